"""``veilbench run``: resolve -> load -> prepare -> for each surrogate set: protect -> evaluate ->
record -> write -> render.

Every model in ``--models`` is both a surrogate (it crafts veils: white-box) and a target (it is
tested with every surrogate's veils: black-box off the diagonal). ``--surrogates a,b`` adds one
ensemble veil crafted against several models at once.

This module only orchestrates: each stage lives in its own module (``data``, ``models``,
``protectors``, ``adversaries``, ``evaluation``) and the document it fills is the typed
contract of :mod:`veilbench.results`. Interrupted runs resume: veils are written per identity
as they are done, prepared crops and gallery embeddings are cached, and the results file is
written atomically at the end.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from veilbench.config import RunConfig
from veilbench.data.faces import EvalData, prepare_data
from veilbench.data.resolve import resolve_dataset
from veilbench.device import pick_device
from veilbench.errors import ConfigError, DataError
from veilbench.evaluation.adversaries import evaluate_adversaries, public_knowledge
from veilbench.evaluation.perception import PROCESSING, evaluate_perception
from veilbench.evaluation.protected import (
    Targets,
    clean_rank1,
    evaluate_clean,
    evaluate_convergence,
    evaluate_images,
    evaluate_targets,
    unconverged_warning,
)
from veilbench.evaluation.samples import SECRETS_WARNING, shareable_samples
from veilbench.executors import Executor, get_executor
from veilbench.models.base import FaceSpace
from veilbench.models.loading import load_models
from veilbench.plugins import get_plugins
from veilbench.protectors.apply import craft_and_protect
from veilbench.protectors.contract import declared_profiles
from veilbench.results import (
    CraftTiming,
    ResultsDocument,
    SurrogateResults,
    portable_path,
    write_json_atomic,
)
from veilbench.validation import validate_run

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    config: RunConfig, *, log: Log = stderr_log, checkpoints: dict[str, str] | None = None
) -> ResultsDocument:
    """Run the benchmark described by ``config``; returns the results document."""
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    plugins = get_plugins()
    validate_run(config, plugins, checkpoints)  # every name and --param before heavy work
    device = pick_device(config.device)
    space = FaceSpace(config.template_size, config.margin)
    out = Path(config.out)

    # Resolve: the dataset decides the profile, which decides the protector's settings.
    t0 = time.perf_counter()
    resolved = resolve_dataset(config.dataset, plugins.registries["datasets"], space, log)
    protector_entry = plugins.registries["protectors"].get(config.protector)
    profile = config.apply_profile(resolved.fallback, declared_profiles(protector_entry.metadata))
    if profile:
        log(f"profile {profile}: {len(resolved.dataset.refs)} photos, a short run (see README)")
    protector = protector_entry.create(**config.protector_params)
    attack_entries = plugins.registries["attacks"].select(config.attacks) if config.attacks else []
    adversary_entries = (
        plugins.registries["adversaries"].select(config.adversaries)
        if config.adversaries.strip()
        else []
    )
    processings = [plugins.registries["attacks"].get(name) for name in PROCESSING]

    doc = ResultsDocument.new(_recorded_config(config, profile), plugins.plugin_versions())
    doc.config["device_resolved"] = str(device)
    doc.config["protector_config"] = _config_dict(protector)
    doc.warnings += resolved.warnings
    if config.samples and config.secret_samples:
        doc.results.samples_contain_secrets = True
        doc.warnings.append(SECRETS_WARNING)

    # Load.
    model_entries = plugins.registries["models"].select(config.models)
    explicit = config.models.strip() != "all" and "*" not in config.models
    models, skipped = load_models(
        model_entries,
        explicit=explicit,
        space=space,
        device=device,
        checkpoints=checkpoints,
        log=log,
    )
    if not models:
        raise ConfigError(
            "no model could be loaded: "
            + "; ".join(f"{s['model']}: {s['reason']}" for s in skipped)
        )
    doc.models = {n: m.card.to_dict() for n, m in models.items()}
    doc.skipped_models = skipped
    for s in skipped:
        log(f"skipped model {s['model']}: {s['reason']}")
    surrogate_sets = _surrogate_sets(config, plugins, models)

    executor = get_executor(config.executor, config.ray_address, config.device)
    try:
        # Prepare.
        data = prepare_data(
            resolved.dataset, config.protocol, space, progress=config.progress, log=log
        )
        doc.dataset = {
            **resolved.dataset.to_dict(),
            "root": portable_path(resolved.dataset.root),
            "fingerprint": data.fingerprint(),
        }
        doc.split = data.split.to_dict()
        doc.problems = data.problems + data.split.skipped_identities
        doc.timings["prepare_s"] = time.perf_counter() - t0
        log(f"{len(data.probes)} probe identities, gallery of {len(data.gallery)} photos")

        t0 = time.perf_counter()
        targets = evaluate_clean(
            models, data, batch_size=config.batch_size, device=device, log=log, executor=executor
        )
        doc.timings["clean_embedding_s"] = time.perf_counter() - t0
        doc.timings["gallery_embeddings_computed"] = {
            n: s.embedded for n, s in targets.states.items()
        }
        doc.results.clean = clean_rank1(targets, data)

        stage = _Stage(
            config=config,
            models=models,
            targets=targets,
            protector=protector,
            protector_name=protector_entry.name,
            attacks=attack_entries,
            processings=processings,
            adversaries=adversary_entries,
            device=device,
            executor=executor,
            log=log,
        )
        for members in surrogate_sets:
            _protect_and_evaluate(stage, doc, members, data)
    finally:
        executor.close()

    # Write and render.
    doc.timings["total_s"] = time.perf_counter() - t_start
    write_json_atomic(out / "results.json", doc)
    from veilbench.report import render_report

    render_report(doc, out / "report.html")
    log(f"wrote {out / 'results.json'} and {out / 'report.html'}")
    return doc


@dataclasses.dataclass
class _Stage:
    """What every surrogate set is protected and evaluated with."""

    config: RunConfig
    models: dict
    targets: Targets
    protector: Any
    protector_name: str
    attacks: list
    processings: list
    adversaries: list
    device: torch.device
    executor: Executor
    log: Log


def _protect_and_evaluate(stage: _Stage, doc: ResultsDocument, members: list[str], data: EvalData):
    """One surrogate set: protect, evaluate, record into ``doc``."""
    config, targets, log = stage.config, stage.targets, stage.log
    key = "+".join(members)
    # Protect.
    log(f"crafting with surrogate {key} ({stage.protector_name}, {stage.executor.name} executor)")
    t0 = time.perf_counter()
    protected, failures = craft_and_protect(
        stage.protector,
        [stage.models[n] for n in members],
        data,
        device=stage.device,
        seed=config.seed,
        veil_dir=Path(config.out) / "veils" / key,
        progress=config.progress,
        executor=stage.executor,
    )
    elapsed = time.perf_counter() - t0
    for identity, reason in failures.items():
        log(f"could not craft {identity!r} with {key}: {reason}")
        doc.problems.append(
            {"identity": identity, "stage": "craft", "surrogates": key, "reason": reason}
        )
    if failures:  # evaluate the identities that were protected
        data = dataclasses.replace(data, probes=[p for p in data.probes if p.identity in protected])
    if not data.probes:
        raise DataError(
            f"no identity could be crafted with surrogate {key}: " + next(iter(failures.values()))
        )
    n_images = sum(len(p.craft) for p in data.probes)
    # Evaluate (one target per executor task) and record.
    t0 = time.perf_counter()
    subset, max_images = config.robustness_on, config.max_attack_images
    msr_table, robustness, impersonation = evaluate_targets(
        targets,
        data,
        protected,
        stage.attacks,
        stage.protector,
        sweeps=config.attack_sweeps,
        subset=subset,
        max_images=max_images,
        executor=stage.executor,
    )
    record = SurrogateResults(
        surrogates=members,
        msr=msr_table,
        image_metrics=evaluate_images(data, protected, stage.device),
        robustness=robustness,
        impersonation=impersonation,
        perception=evaluate_perception(
            targets, data, protected, stage.processings, subset=subset, max_images=max_images
        ),
        samples=shareable_samples(data.probes, protected, secrets=config.secret_samples)
        if config.samples
        else {},
        craft_timing=CraftTiming(
            total=elapsed,
            per_veil=elapsed / max(1, len(data.probes)),
            per_image=elapsed / max(1, n_images),
            veils=len(data.probes),
        ),
    )
    doc.results.surrogates[key] = record
    if stage.adversaries:
        # The attacker's own models: those that did not craft these veils (black-box).
        attacker = [m for n, m in stage.models.items() if n not in members] or [
            stage.models[members[0]]
        ]
        public = public_knowledge(
            data, stage.protector, attacker, device=stage.device, seed=config.seed, log=log
        )
        record.adversaries, record.adversary_samples = evaluate_adversaries(
            targets,
            data,
            protected,
            stage.adversaries,
            public,
            ks=config.adversary_ks(),
            samples=config.samples,
            sample_secrets=config.secret_samples,
        )
    record.evaluate_s = time.perf_counter() - t0
    record.convergence = evaluate_convergence(protected)
    if warning := unconverged_warning(key, record.convergence):
        doc.warnings.append(warning)
        log(f"warning: {warning}")


def _surrogate_sets(config: RunConfig, plugins, models: dict) -> list[list[str]]:
    """One set per crafting model, plus the ``--surrogates`` ensemble when it names several."""
    ensemble = [s.strip() for s in (config.surrogates or "").split(",") if s.strip()]
    for name in ensemble:
        if name not in models:
            raise ConfigError(f"--surrogates names {name!r}, which is not among the loaded models")
    crafting = list(models)
    if config.craft_with is not None:
        chosen = {e.name for e in plugins.registries["models"].select(config.craft_with)}
        crafting = [n for n in models if n in chosen]
    return [[n] for n in crafting] + ([ensemble] if len(ensemble) > 1 else [])


def _recorded_config(config: RunConfig, profile: str | None) -> dict:
    """The effective config as results record it: the profile applied, no machine paths."""
    recorded = config.to_dict()
    recorded["profile_applied"] = profile or "full"
    recorded["out"] = portable_path(config.out)
    if config.dataset and Path(config.dataset).exists():
        recorded["dataset"] = portable_path(config.dataset)
    return recorded


def _config_dict(protector) -> dict:
    cfg = getattr(protector, "config", None)
    if cfg is None or isinstance(cfg, dict):
        return dict(cfg or {})
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))
