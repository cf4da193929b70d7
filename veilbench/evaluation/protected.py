"""Evaluating protected photos: MSR, image quality, robustness, impersonation.

The inputs are a run's prepared photos (:class:`~veilbench.data.faces.EvalData`), its target
models with their clean galleries (:class:`Targets`) and one surrogate set's protected photos
(:class:`~veilbench.protectors.apply.ProtectedFaces` per identity); the outputs are the typed
records of the measurements (:mod:`veilbench.measurements`); each measurement calls one of these.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from veilbench.data.faces import EvalData
from veilbench.evaluation.acceptance import Acceptance, calibrate
from veilbench.evaluation.identification import EmbeddingCache, Gallery, embed
from veilbench.executors import Executor, LocalExecutor
from veilbench.measurements import SUBSETS
from veilbench.measurements.image_quality import ImageMetrics
from veilbench.measurements.msr import MsrCell
from veilbench.measurements.records import ImageQuality, Rate, rate_of
from veilbench.measurements.robustness import RobustnessCurve
from veilbench.models.base import FaceModel
from veilbench.protectors.apply import ProtectedFaces, quantise
from veilbench.protectors.contract import traits
from veilbench.protectors.engine.convergence import ConvergenceRecord
from veilbench.registry import Entry
from veilbench.veilfile import Veil, convergence_of
from veilbench.weights import cache_dir

Protected = dict[str, ProtectedFaces]


@dataclass
class TargetState:
    """One target model's gallery and its clean answers for every probe photo."""

    gallery: Gallery
    clean_top1: dict[str, dict[str, np.ndarray]]  # identity -> subset -> top-1 identities
    embedded: int  # gallery embeddings computed (not read from the cache)
    #: identity -> subset -> the clean probe photos' embeddings (what clean TAR is of)
    clean_embeddings: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    #: enrolment centroids and verification thresholds (None: not calibrated)
    acceptance: Acceptance | None = None


@dataclass
class Targets:
    """The models protected photos are tested against, each with its clean gallery."""

    models: dict[str, FaceModel]
    states: dict[str, TargetState]
    batch_size: int
    device: torch.device

    def embed(self, target: str, images: torch.Tensor) -> torch.Tensor:
        """The target's embedding of each image, as saved (quantised)."""
        return embed(
            self.models[target], quantise(images), batch_size=self.batch_size, device=self.device
        )

    def top1(self, target: str, images: torch.Tensor) -> np.ndarray:
        """The target's answer (top-1 gallery identity) for each image, as saved (quantised)."""
        return self.states[target].gallery.top1(self.embed(target, images))

    def accepted(
        self,
        target: str,
        identities: list[str],
        images: torch.Tensor | None = None,
        *,
        embeddings: torch.Tensor | None = None,
    ) -> dict[str, np.ndarray]:
        """far label -> whether the target accepts each image as ``identities[i]`` (1:1 against
        the person's enrolment centroid, at the threshold calibrated on clean impostors)."""
        acceptance = self.states[target].acceptance
        if acceptance is None:
            return {}
        if embeddings is None:
            embeddings = self.embed(target, images)
        return acceptance.accepted(identities, embeddings)

    def clean(self, target: str, identity: str, subset: str) -> np.ndarray:
        return self.states[target].clean_top1[identity][subset]

    def only(self, target: str) -> Targets:
        """This target alone (what one parallel evaluation task needs)."""
        return Targets(
            {target: self.models[target]},
            {target: self.states[target]},
            self.batch_size,
            self.device,
        )


def _embed_shard(shared: tuple[FaceModel, Path, dict], shard: tuple[list[str], Any]) -> int:
    """Embed one shard of gallery photos into the on-disk cache; how many were computed."""
    model, root, kw = shared
    keys, crops = shard
    return EmbeddingCache(model, root).get_or_compute(model, keys, crops, **kw)[1]


def evaluate_clean(
    models: dict[str, FaceModel],
    data: EvalData,
    *,
    batch_size: int,
    device: torch.device,
    log: Callable[[str], None] = lambda message: None,
    executor: Executor | None = None,
) -> Targets:
    """Embed every gallery (cached by content hash) and the clean probe photos.

    The gallery photos missing from the cache are split into one shard per executor slot;
    each shard writes its embeddings into the shared on-disk cache, read back here.
    """
    executor = executor or LocalExecutor()
    states = {}
    for name, model in models.items():
        kw: dict[str, Any] = {"batch_size": batch_size, "device": device}
        t0 = time.perf_counter()
        index = EmbeddingCache(model, cache_dir() / "embeddings").index
        hashes = data.gallery.hashes
        missing = np.array([i for i, k in enumerate(hashes) if k not in index], dtype=np.int64)
        shards = [
            ([hashes[i] for i in part], data.gallery.crops[part])
            for part in np.array_split(missing, executor.slots)
            if len(part)
        ]
        # The folder is named here, not found from each worker's environment: one cache for all.
        root = cache_dir() / "embeddings"
        computed = sum(executor.map(_embed_shard, shards, shared=(model, root, kw)))
        cache = EmbeddingCache(model, root)  # now holding what every shard wrote
        # Anything still missing (a worker whose cache folder this machine cannot see) is
        # computed here and counted, so a cache that is not shared shows in the timings.
        emb, again = cache.get_or_compute(model, hashes, data.gallery.crops, **kw)
        computed += again
        log(
            f"gallery embeddings for {name}: {len(emb)} ({computed} computed, "
            f"{len(emb) - computed} cached) in {time.perf_counter() - t0:.1f}s"
        )
        gallery = Gallery(emb, data.gallery.identities)
        clean: dict[str, dict[str, np.ndarray]] = {}
        clean_emb: dict[str, dict[str, torch.Tensor]] = {}
        for probe in data.probes:
            clean[probe.identity] = {}
            for subset in SUBSETS:
                faces = probe.subset(subset)
                q, _ = cache.get_or_compute(model, faces.hashes, faces.crops, **kw)
                clean[probe.identity][subset] = gallery.top1(q)
                clean_emb.setdefault(probe.identity, {})[subset] = q
        acceptance = calibrate(gallery, [p.identity for p in data.probes])
        states[name] = TargetState(gallery, clean, computed, clean_emb, acceptance)
    return Targets(models, states, batch_size, device)


def clean_rank1(targets: Targets, data: EvalData) -> dict[str, dict[str, Rate]]:
    """Each target's rank-1 on the clean probe photos (its own accuracy on this split)."""
    out: dict[str, dict[str, Rate]] = {}
    for t in targets.models:
        out[t] = {}
        for subset in SUBSETS:
            answers = np.concatenate([targets.clean(t, p.identity, subset) for p in data.probes])
            truth = [p.identity for p in data.probes for _ in p.subset(subset).identities]
            out[t][subset] = rate_of(answers == np.asarray(truth), truth)
    return out


def evaluate_msr(targets: Targets, data: EvalData, protected: Protected) -> dict:
    """target -> subset -> :class:`MsrCell` for one surrogate set's protected photos."""
    table: dict[str, dict[str, MsrCell]] = {}
    for target in targets.models:
        table[target] = {}
        for subset in SUBSETS:
            answers = [
                targets.top1(target, protected[p.identity].subset(subset)) for p in data.probes
            ]
            clean = [targets.clean(target, p.identity, subset) for p in data.probes]
            truth = [p.identity for p, a in zip(data.probes, answers, strict=True) for _ in a]
            tp, tc = np.concatenate(answers), np.concatenate(clean)
            who = np.asarray(truth)
            table[target][subset] = MsrCell(
                msr=rate_of(tp == tc, truth, per_identity=True),
                rank1_protected=rate_of(tp == who, truth, per_identity=True),
                rank1_clean=rate_of(tc == who, truth),
                n=len(tp),
            )
    return table


def image_quality(
    original: torch.Tensor, other: torch.Tensor, device: torch.device
) -> ImageQuality:
    from veilbench.evaluation.image_metrics import psnr, ssim
    from veilbench.evaluation.lpips_alex import lpips_distance

    return ImageQuality(
        ssim=float(ssim(original, other).mean()),
        lpips=float(lpips_distance(original.to(device), other.to(device)).mean()),
        psnr=float(psnr(original, other).clamp(max=100.0).mean()),
        n=int(original.shape[0]),
    )


def evaluate_images(data: EvalData, protected: Protected, device: torch.device) -> ImageMetrics:
    """Protected (crafting + held-out) and recovered (crafting) photos against the originals."""
    originals = torch.cat([p.craft.tensor() for p in data.probes])
    held = torch.cat([p.held_out.tensor() for p in data.probes])
    prot = torch.cat(
        [protected[p.identity].craft for p in data.probes]
        + [protected[p.identity].held_out for p in data.probes]
    )
    recovered = [protected[p.identity].craft_recovered for p in data.probes]
    return ImageMetrics(
        protected=image_quality(torch.cat([originals, held]), prot, device),
        recovered=None
        if any(r is None for r in recovered)
        else image_quality(originals, torch.cat(recovered), device),
    )


def _one_target(shared: tuple, target: str) -> Any:
    """One target's share of an evaluation (one parallel task)."""
    evaluate, targets, args, kwargs = shared
    return evaluate(targets.only(target), *args, **kwargs)


def per_target(
    evaluate: Callable[..., Any], targets: Targets, *args: Any, executor: Executor | None, **kw: Any
) -> list[Any]:
    """``evaluate(one_target, *args, **kw)`` for every target, one executor task each."""
    executor = executor or LocalExecutor()
    return executor.map(_one_target, list(targets.models), shared=(evaluate, targets, args, kw))


def evaluate_msr_parallel(
    targets: Targets, data: EvalData, protected: Protected, executor: Executor | None = None
) -> dict[str, dict[str, MsrCell]]:
    """:func:`evaluate_msr`, one target per executor task."""
    table: dict[str, dict[str, MsrCell]] = {}
    for part in per_target(evaluate_msr, targets, data, protected, executor=executor):
        table.update(part)
    return table


def evaluate_impersonation_parallel(
    targets: Targets,
    data: EvalData,
    protected: Protected,
    protector: Any,
    executor: Executor | None = None,
) -> dict[str, Rate]:
    """:func:`evaluate_impersonation`, one target per executor task."""
    rates: dict[str, Rate] = {}
    parts = per_target(
        evaluate_impersonation, targets, data, protected, protector, executor=executor
    )
    for part in parts:
        rates.update(part)
    return rates


def evaluate_robustness_parallel(
    targets: Targets,
    data: EvalData,
    protected: Protected,
    attacks: list[Entry],
    *,
    executor: Executor | None = None,
    **kw: Any,
) -> dict[str, RobustnessCurve]:
    """:func:`evaluate_robustness`, one target per executor task, curves merged."""
    curves: dict[str, RobustnessCurve] = {}
    parts = per_target(
        evaluate_robustness, targets, data, protected, attacks, executor=executor, **kw
    )
    for part in parts:
        for attack, curve in part.items():
            merged = curves.setdefault(
                attack, RobustnessCurve(curve.parameter, curve.strengths, {}, {})
            )
            merged.protected.update(curve.protected)
            merged.clean.update(curve.clean)
    return curves


def evaluate_robustness(
    targets: Targets,
    data: EvalData,
    protected: Protected,
    attacks: list[Entry],
    *,
    sweeps: dict[str, list[float]],
    subset: str = "held_out",
    max_images: int | None = None,
) -> dict[str, RobustnessCurve]:
    """MSR per target per attack strength, and the same attack on clean photos (the baseline)."""
    out: dict[str, RobustnessCurve] = {}
    for entry in attacks:
        sweep = [float(s) for s in sweeps.get(entry.name, entry.metadata.get("sweep", []))]
        curve = RobustnessCurve(str(entry.metadata.get("parameter", "")), sweep, {}, {})
        for target in targets.models:
            prot_curve, clean_curve = [], []
            for strength in sweep:
                attack = entry.create(strength)
                tp, ta, tc, truth = [], [], [], []
                for p in data.probes:
                    faces = p.subset(subset)
                    n = len(faces) if max_images is None else min(max_images, len(faces))
                    images = protected[p.identity].subset(subset)[:n].to(targets.device)
                    tp.append(targets.top1(target, attack(images)))
                    clean_images = faces.tensor()[:n].to(targets.device)
                    ta.append(targets.top1(target, attack(clean_images)))
                    tc.append(targets.clean(target, p.identity, subset)[:n])
                    truth += [p.identity] * n
                clean = np.concatenate(tc)
                prot_curve.append(rate_of(np.concatenate(tp) == clean, truth))
                clean_curve.append(rate_of(np.concatenate(ta) == clean, truth))
            curve.protected[target] = prot_curve
            curve.clean[target] = clean_curve
        out[entry.name] = curve
    return out


def evaluate_impersonation(
    targets: Targets, data: EvalData, protected: Protected, protector: Any
) -> dict[str, Rate]:
    """Person p's veil on OTHER probes' photos: how often each target then answers 'p'.

    Beyond the paper: a high white-box rate means the veil is a token for p, so a leaked veil
    lets anyone be recognised as p by that model. Per-image protectors have no such token.
    """
    if len(data.probes) < 2 or traits(protector).per_image:
        return {}
    rates: dict[str, Rate] = {}
    for target in targets.models:
        hits: list[np.ndarray] = []
        owners: list[str] = []  # the unit is the veil's owner: one token per person
        for p in data.probes:
            veil = protected[p.identity].veil
            if veil is None:
                continue
            others = torch.cat([q.held_out.tensor()[:3] for q in data.probes if q is not p])
            answers = targets.top1(target, protector.apply(veil, others))
            hits.append(answers == p.identity)
            owners += [p.identity] * len(answers)
        rates[target] = rate_of(np.concatenate(hits) if hits else [], owners)
    return rates


def evaluate_convergence(protected: Protected) -> dict[str, ConvergenceRecord]:
    """identity -> its veil's convergence record; identities without one are left out."""
    out = {}
    for identity, p in protected.items():
        record = convergence_of(p.veil) if isinstance(p.veil, Veil) else None
        if record is not None:
            out[identity] = record.record()
    return out
