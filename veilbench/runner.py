"""``veilbench run``: data -> models -> protector -> attacks -> evaluation -> results -> report.

Every model in ``--models`` is both a surrogate (it crafts veils: white-box) and a target (it is
tested with every surrogate's veils: black-box off the diagonal). ``--surrogates a,b`` adds one
ensemble veil crafted against several models at once.

Interrupted runs resume: veils are written per identity as they are done, prepared crops and
gallery embeddings are cached, and the results file is written atomically at the end.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from veilbench.config import RunConfig
from veilbench.data.datasets import FaceDataset, PreparedFaces, prepare
from veilbench.data.protocol import Split, split
from veilbench.errors import ConfigError, VeilbenchError
from veilbench.evaluation.identification import (
    EmbeddingCache,
    Gallery,
    as_nchw,
    embed,
    msr,
    rank1,
)
from veilbench.models.base import FaceModel, FaceSpace
from veilbench.plugins import Plugins, get_plugins
from veilbench.registry import Entry
from veilbench.results import new_document, write_json_atomic
from veilbench.weights import WeightsError, status

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pick_device(requested: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use cpu/auto")
    return torch.device(requested)


# Data ----------------------------------------------------------------------------------------


def resolve_dataset(
    config: RunConfig, plugins: Plugins, log: Log, space: FaceSpace
) -> tuple[FaceDataset, list[str]]:
    """The dataset to use and any warnings: flag/config, $VEILBENCH_DATA, LFW, else synthetic."""
    datasets = plugins.registries["datasets"]
    spec = config.dataset or os.environ.get("VEILBENCH_DATA")
    if spec:
        if spec in datasets:
            ds = datasets.get(spec).create()
        elif Path(spec).exists():
            looks_lfw = "lfw" in Path(spec).name.lower() or spec.endswith((".tgz", ".tar.gz"))
            ds = datasets.get("lfw" if looks_lfw else "folder").create(path=spec)
        else:
            raise ConfigError(
                f"--dataset {spec!r} is neither a registered dataset "
                f"({', '.join(datasets.names())}) nor an existing path"
            )
        return ds, (["synthetic faces: numbers are not meaningful"] if ds.synthetic else [])
    try:
        return datasets.get("lfw").create(), []
    except VeilbenchError as exc:
        log(f"veilbench: LFW is not available ({exc})")
    from veilbench.data.synthetic import SYNTHETIC_WARNING

    log("=" * 78 + f"\nWARNING: {SYNTHETIC_WARNING}\n" + "=" * 78)
    return datasets.get("synthetic").create(space=space), [SYNTHETIC_WARNING]


@dataclass
class Faces:
    """Prepared canonical crops (uint8 N x S x S x 3) with identities and file hashes."""

    crops: np.ndarray
    identities: list[str]
    hashes: list[str]
    files: list[str]

    def take(self, idx: list[int]) -> Faces:
        return Faces(
            self.crops[idx],
            [self.identities[i] for i in idx],
            [self.hashes[i] for i in idx],
            [self.files[i] for i in idx],
        )

    def tensor(self) -> torch.Tensor:
        return as_nchw(self.crops)


@dataclass
class ProbeFaces:
    identity: str
    craft: Faces
    held_out: Faces


@dataclass
class EvalData:
    split: Split
    probes: list[ProbeFaces]
    gallery: Faces
    problems: list[dict] = field(default_factory=list)


def prepare_data(dataset: FaceDataset, config: RunConfig, space: FaceSpace, log: Log) -> EvalData:
    first = split(dataset, config.protocol)
    wanted = [r for p in first.probes for r in p.craft + p.enrol + p.held_out] + first.distractors
    log(f"preparing {len(wanted)} photos ({dataset.name}, alignment {dataset.alignment})")
    prepared: PreparedFaces = prepare(dataset, wanted, space, progress=config.progress)
    where = {str(r.path): i for i, r in enumerate(prepared.refs)}
    final = split(dataset, config.protocol, usable=set(where))

    def faces(refs) -> Faces:
        idx = [where[str(r.path)] for r in refs]
        return Faces(
            prepared.crops[idx],
            [r.identity for r in refs],
            [prepared.hashes[i] for i in idx],
            [str(r.path) for r in refs],
        )

    probes = [ProbeFaces(p.identity, faces(p.craft), faces(p.held_out)) for p in final.probes]
    return EvalData(final, probes, faces(final.gallery()), prepared.problems)


# Models --------------------------------------------------------------------------------------


def load_models(
    entries: list[Entry],
    explicit: bool,
    space: FaceSpace,
    device: torch.device,
    checkpoints: dict[str, str],
    log: Log,
) -> tuple[dict[str, FaceModel], list[dict]]:
    """Instantiate models; with ``all``, those without usable weights are skipped with a reason."""
    models, skipped = {}, []
    for entry in entries:
        kwargs: dict[str, Any] = {"space": space}
        if entry.name in checkpoints:
            kwargs["path" if entry.name == "onnx" else "checkpoint"] = checkpoints[entry.name]
        elif entry.metadata.get("needs"):
            reason = f"needs --checkpoint {entry.name}=PATH (no pretrained weights reachable)"
            if explicit:
                raise ConfigError(f"model {entry.name} {reason}")
            skipped.append({"model": entry.name, "reason": reason})
            continue
        unavailable = [w.name for w in entry.metadata.get("weights", []) if not status(w).available]
        if unavailable:
            skipped.append({"model": entry.name, "reason": f"weights unavailable: {unavailable}"})
            continue
        try:
            log(f"loading model {entry.name}")
            model = entry.create(**kwargs).to(device).eval()
        except WeightsError as exc:
            if explicit:
                raise
            skipped.append({"model": entry.name, "reason": str(exc)})
            continue
        for p in model.parameters():
            p.requires_grad_(False)
        models[entry.name] = model
    return models, skipped


# Evaluation ----------------------------------------------------------------------------------


def quantise(images: torch.Tensor) -> torch.Tensor:
    """What a PNG on disk holds: rounded to integers in [0, 255]."""
    return images.clamp(0, 255).round()


@dataclass
class TargetState:
    """One target model's gallery and the clean answers for every probe photo."""

    gallery: Gallery
    clean_top1: dict[str, dict[str, np.ndarray]]  # identity -> subset -> top-1 identities
    embedded: int  # gallery embeddings computed (not from cache)


def evaluate_clean(
    models: dict[str, FaceModel],
    data: EvalData,
    config: RunConfig,
    device: torch.device,
    log: Log,
) -> dict[str, TargetState]:
    states = {}
    for name, model in models.items():
        cache = EmbeddingCache(model)
        t0 = time.perf_counter()
        emb, computed = cache.get_or_compute(
            model,
            data.gallery.hashes,
            data.gallery.crops,
            batch_size=config.batch_size,
            device=device,
        )
        log(
            f"gallery embeddings for {name}: {len(emb)} ({computed} computed, "
            f"{len(emb) - computed} cached) in {time.perf_counter() - t0:.1f}s"
        )
        gallery = Gallery(emb, data.gallery.identities)
        clean: dict[str, dict[str, np.ndarray]] = {}
        for probe in data.probes:
            clean[probe.identity] = {}
            for subset, faces in (("craft", probe.craft), ("held_out", probe.held_out)):
                q, _ = cache.get_or_compute(
                    model, faces.hashes, faces.crops, batch_size=config.batch_size, device=device
                )
                clean[probe.identity][subset] = gallery.top1(q)
        states[name] = TargetState(gallery, clean, computed)
    return states


def _mean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")


def image_metrics(original: torch.Tensor, other: torch.Tensor, device: torch.device) -> dict:
    from veilbench.evaluation.image_metrics import psnr, ssim
    from veilbench.evaluation.lpips_alex import lpips_distance

    return {
        "ssim": float(ssim(original, other).mean()),
        "lpips": float(lpips_distance(original.to(device), other.to(device)).mean()),
        "psnr": float(psnr(original, other).clamp(max=100.0).mean()),
        "n": int(original.shape[0]),
    }


def run(config: RunConfig, *, log: Log = stderr_log, checkpoints: dict[str, str] | None = None):
    """Run the benchmark described by ``config``; returns the results document."""
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    plugins = get_plugins()
    device = pick_device(config.device)
    space = FaceSpace(config.template_size, config.margin)
    out = Path(config.out)
    doc = new_document(config.to_dict(), plugins.plugin_versions())
    doc["config"]["device_resolved"] = str(device)
    timings: dict[str, Any] = doc["timings"]

    protector_entry = plugins.registries["protectors"].get(config.protector)
    protector = protector_entry.create(**config.protector_params)
    doc["config"]["protector_config"] = _config_dict(protector)

    model_entries = plugins.registries["models"].select(config.models)
    explicit = config.models.strip() != "all" and "*" not in config.models
    models, skipped = load_models(model_entries, explicit, space, device, checkpoints or {}, log)
    ensemble = [s.strip() for s in (config.surrogates or "").split(",") if s.strip()]
    for name in ensemble:
        if name not in models:
            raise ConfigError(f"--surrogates names {name!r}, which is not among the loaded models")
    if not models:
        raise ConfigError(
            "no model could be loaded: "
            + "; ".join(f"{s['model']}: {s['reason']}" for s in skipped)
        )
    doc["models"] = {n: m.card.to_dict() for n, m in models.items()}
    doc["skipped_models"] = skipped
    for s in skipped:
        log(f"skipped model {s['model']}: {s['reason']}")

    t0 = time.perf_counter()
    dataset, warnings = resolve_dataset(config, plugins, log, space)
    doc["warnings"] += warnings
    doc["dataset"] = dataset.to_dict()
    data = prepare_data(dataset, config, space, log)
    doc["split"] = data.split.to_dict()
    doc["problems"] = data.problems + data.split.skipped_identities
    timings["prepare_s"] = time.perf_counter() - t0
    log(f"{len(data.probes)} probe identities, gallery of {len(data.gallery.hashes)} photos")

    t0 = time.perf_counter()
    states = evaluate_clean(models, data, config, device, log)
    timings["clean_embedding_s"] = time.perf_counter() - t0
    timings["gallery_embeddings_computed"] = {n: s.embedded for n, s in states.items()}

    results = doc["results"]
    results["clean"] = {
        t: {
            subset: rank1(
                np.concatenate([states[t].clean_top1[p.identity][subset] for p in data.probes]),
                [p.identity for p in data.probes for _ in getattr(p, subset).identities],
            )
            for subset in ("craft", "held_out")
        }
        for t in models
    }
    crafting = list(models)
    if config.craft_with is not None:
        chosen = {e.name for e in plugins.registries["models"].select(config.craft_with)}
        crafting = [n for n in models if n in chosen]
    surrogate_sets = [[n] for n in crafting] + ([ensemble] if len(ensemble) > 1 else [])
    attack_entries = plugins.registries["attacks"].select(config.attacks) if config.attacks else []
    results["msr"], results["image_metrics"], results["robustness"] = {}, {}, {}
    results["impersonation"], results["samples"], results["per_identity"] = {}, {}, {}
    timings["craft_s"] = {}
    for surrogate_names in surrogate_sets:
        key = "+".join(surrogate_names)
        log(f"crafting with surrogate {key} ({protector_entry.name})")
        t0 = time.perf_counter()
        protected = craft_and_protect(
            protector,
            protector_entry,
            [models[n] for n in surrogate_names],
            data,
            config,
            device,
            out / "veils" / key,
        )
        elapsed = time.perf_counter() - t0
        n_images = sum(len(p.craft.hashes) for p in data.probes)
        timings["craft_s"][key] = {
            "total": elapsed,
            "per_veil": elapsed / max(1, len(data.probes)),
            "per_image": elapsed / max(1, n_images),
            "veils": len(data.probes),
        }
        t0 = time.perf_counter()
        results["msr"][key] = evaluate_msr(models, states, data, protected, config, device)
        results["image_metrics"][key] = evaluate_images(data, protected, device)
        results["robustness"][key] = evaluate_robustness(
            models, states, data, protected, attack_entries, config, device
        )
        results["impersonation"][key] = evaluate_impersonation(
            models, states, data, protected, protector, device, config
        )
        if config.samples:
            from veilbench.samples import SECRETS_WARNING, shareable_samples

            results["samples"][key] = shareable_samples(
                data.probes, protected, secrets=config.secret_samples
            )
            results["samples_contain_secrets"] = config.secret_samples
            if config.secret_samples and SECRETS_WARNING not in doc["warnings"]:
                doc["warnings"].append(SECRETS_WARNING)
        timings.setdefault("evaluate_s", {})[key] = time.perf_counter() - t0
    results["privacy"] = privacy_summary(results["msr"])
    timings["total_s"] = time.perf_counter() - t_start
    write_json_atomic(out / "results.json", doc)
    from veilbench.report import render_report

    render_report(doc, out / "report.html")
    log(f"wrote {out / 'results.json'} and {out / 'report.html'}")
    return doc


def _config_dict(protector: Any) -> dict:
    cfg = getattr(protector, "config", None)
    if cfg is None or isinstance(cfg, dict):
        return dict(cfg or {})
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))


def craft_and_protect(
    protector: Any,
    entry: Entry,
    surrogates: list[FaceModel],
    data: EvalData,
    config: RunConfig,
    device: torch.device,
    veil_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Craft every probe's veil (resuming from ``veil_dir``) and protect its photos."""
    per_image = bool(getattr(protector, "per_image", entry.metadata.get("per_image", False)))
    inputs = {}
    for p in data.probes:
        images = p.craft.tensor()
        if per_image:  # one perturbation per photo: the held-out photos need crafting too
            images = torch.cat([images, p.held_out.tensor()])
        inputs[p.identity] = images
    veils = protector.craft(
        inputs,
        surrogates,
        device=device,
        seed=config.seed,
        out_dir=veil_dir,
        progress=config.progress,
    )
    protected = {}
    for p in data.probes:
        veil = veils[p.identity]
        n = len(p.craft.hashes)
        if per_image:
            both = quantise(protector.apply(veil, inputs[p.identity]).cpu())
            craft, held = both[:n], both[n:]
            recovered = protector.recover(veil, both).cpu()[:n]
        else:
            craft = quantise(protector.apply(veil, p.craft.tensor()).cpu())
            held = quantise(protector.apply(veil, p.held_out.tensor()).cpu())
            recovered = protector.recover(veil, craft).cpu()
        protected[p.identity] = {
            "craft": craft,
            "held_out": held,
            "craft_recovered": quantise(recovered),
            "veil": _veil_image(veil),
            "obj": veil,
        }
    return protected


def privacy_summary(msr_table: dict) -> dict:
    """Per surrogate: the service's rate (white-box targets) beside an attacker's (black-box).

    The paper reads high white-box MSR as utility (the service that crafted the veil still
    identifies the person) and low black-box MSR as privacy (an attacker's own model fails).
    """
    summary = {}
    for key, row in msr_table.items():
        members = set(key.split("+"))
        for subset in ("craft", "held_out"):
            white = [row[t][subset] for t in row if t in members]
            black = [row[t][subset] for t in row if t not in members]
            summary.setdefault(key, {})[subset] = {
                "service_msr": _mean([c["msr"] for c in white]),
                "service_rank1": _mean([c["rank1_protected"] for c in white]),
                "attacker_msr": _mean([c["msr"] for c in black]),
                "attacker_rank1": _mean([c["rank1_protected"] for c in black]),
                "attacker_models": sorted(t for t in row if t not in members),
            }
    return summary


def _veil_image(veil: Any) -> torch.Tensor | None:
    """The veil as one 3 x S x S image, when the protector has one (per-image ones do not)."""
    image = veil if isinstance(veil, torch.Tensor) else getattr(veil, "veil", None)
    return image.detach().cpu() if image is not None and image.ndim == 3 else None


def top1(model: FaceModel, state: TargetState, images: torch.Tensor, config, device) -> np.ndarray:
    """The target model's answer (top-1 gallery identity) for each image."""
    emb = embed(model, quantise(images), batch_size=config.batch_size, device=device)
    return state.gallery.top1(emb)


def evaluate_msr(models, states, data, protected, config, device) -> dict:
    """surrogate's veils -> every target: MSR and rank-1 on crafting and held-out photos."""
    table = {}
    for target, model in models.items():
        row = {}
        for subset in ("craft", "held_out"):
            answers = [
                top1(model, states[target], protected[p.identity][subset], config, device)
                for p in data.probes
            ]
            clean = [states[target].clean_top1[p.identity][subset] for p in data.probes]
            truth = [p.identity for p, a in zip(data.probes, answers, strict=True) for _ in a]
            tp, tc = np.concatenate(answers), np.concatenate(clean)
            row[subset] = {
                "msr": msr(tp, tc),
                "rank1_protected": rank1(tp, truth),
                "rank1_clean": rank1(tc, truth),
                "n": int(len(tp)),
            }
        table[target] = row
    return table


def evaluate_images(data: EvalData, protected, device) -> dict:
    originals = torch.cat([p.craft.tensor() for p in data.probes])
    held = torch.cat([p.held_out.tensor() for p in data.probes])
    prot_c = torch.cat([protected[p.identity]["craft"] for p in data.probes])
    prot_h = torch.cat([protected[p.identity]["held_out"] for p in data.probes])
    rec = torch.cat([protected[p.identity]["craft_recovered"] for p in data.probes])
    return {
        "protected": image_metrics(
            torch.cat([originals, held]), torch.cat([prot_c, prot_h]), device
        ),
        "recovered": image_metrics(originals, rec, device),
    }


def evaluate_robustness(models, states, data, protected, attack_entries, config, device) -> dict:
    """MSR per target per attack strength; also how the attack hurts clean photos (baseline)."""
    out: dict[str, Any] = {}
    subset = config.robustness_on
    cap = config.max_attack_images
    for entry in attack_entries:
        sweep = config.attack_sweeps.get(entry.name, entry.metadata.get("sweep", []))
        curves: dict[str, Any] = {
            "parameter": entry.metadata.get("parameter", ""),
            "strengths": list(sweep),
            "protected": {},
            "clean": {},
        }
        for target, model in models.items():
            state = states[target]
            prot_curve, clean_curve = [], []
            for strength in sweep:
                attack = entry.create(strength)
                tp, ta, tc = [], [], []
                for p in data.probes:
                    faces = getattr(p, subset)
                    n = len(faces.hashes) if cap is None else min(cap, len(faces.hashes))
                    images = protected[p.identity][subset][:n].to(device)
                    tp.append(top1(model, state, attack(images), config, device))
                    clean_images = faces.tensor()[:n].to(device)
                    ta.append(top1(model, state, attack(clean_images), config, device))
                    tc.append(state.clean_top1[p.identity][subset][:n])
                clean = np.concatenate(tc)
                prot_curve.append(msr(np.concatenate(tp), clean))
                clean_curve.append(msr(np.concatenate(ta), clean))
            curves["protected"][target] = prot_curve
            curves["clean"][target] = clean_curve
        out[entry.name] = curves
    return out


def evaluate_impersonation(models, states, data, protected, protector, device, config) -> dict:
    """Person p's veil on OTHER probes' photos: how often each target then answers 'p'.

    Beyond the paper: a high white-box rate means the veil is a token for p, so a leaked veil
    lets anyone be recognised as p by that model.
    """
    if len(data.probes) < 2 or getattr(protector, "per_image", False):
        return {}
    rates = {}
    for target, model in models.items():
        hits, total = 0, 0
        for p in data.probes:
            veil = protected[p.identity]["obj"]
            if veil is None:
                continue
            others = torch.cat([q.held_out.tensor()[:3] for q in data.probes if q is not p])
            answers = top1(model, states[target], protector.apply(veil, others), config, device)
            hits += int((answers == p.identity).sum())
            total += len(answers)
        rates[target] = hits / total if total else float("nan")
    return rates
