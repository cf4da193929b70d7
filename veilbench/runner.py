"""``veilbench run``: resolve -> load -> prepare -> for each surrogate set: protect -> evaluate ->
record -> write -> render.

Every model in ``--models`` is both a surrogate (it crafts veils: white-box) and a target (it is
tested with every surrogate's veils: black-box off the diagonal). ``--surrogates a,b`` adds one
ensemble veil crafted against several models at once.

This module only orchestrates: each stage lives in its own module (``data``, ``models``,
``protectors``) and what is measured is every registered measurement that applies (or those
``--measurements`` names), each filling its own record of the typed contract of
:mod:`veilbench.results`; a measurement that fails is reported in ``problems`` and the rest go
on. The runner names no measurement. Interrupted runs resume: veils are written per identity
as they are done, prepared crops and gallery embeddings are cached, and the results file is
written atomically at the end.
"""

from __future__ import annotations

import dataclasses
import re
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
from veilbench.evaluation.protected import Targets, evaluate_clean
from veilbench.evaluation.samples import SECRETS_WARNING
from veilbench.executors import Executor, get_executor
from veilbench.measurements import select
from veilbench.measurements.contract import Context, Measurement
from veilbench.models.base import FaceSpace
from veilbench.models.loading import load_models
from veilbench.plugins import get_plugins
from veilbench.protectors.apply import craft_and_protect
from veilbench.protectors.pool import reserve_pools
from veilbench.protectors.variants import protector_variants
from veilbench.results import (
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

    # Resolve: the dataset decides the profile, which decides the protectors' settings.
    t0 = time.perf_counter()
    resolved = resolve_dataset(config.dataset, plugins.registries["datasets"], space, log)
    if config.alignment and not resolved.dataset.synthetic:
        resolved.dataset.alignment = config.alignment
    profile = config.apply_profile(resolved.fallback)
    variants = protector_variants(
        config.protector,
        config.protector_params,
        plugins.registries["protectors"],
        profile=profile,
        explicit=config.explicit,
    )
    if len(variants) == 1:  # recorded as given plus what the profile set
        config.protector_params = dict(variants[0].params)
    if profile:
        log(f"profile {profile}: {len(resolved.dataset.refs)} photos, a short run (see README)")
    protectors = {v.name: v.create() for v in variants}  # cheap: settings checked up front
    measurements, notes = select(config.measurements, config, plugins)

    doc = ResultsDocument.new(_recorded_config(config, profile), plugins.plugin_versions())
    doc.config["device_resolved"] = str(device)
    if len(variants) == 1:
        doc.config["protector_config"] = _config_dict(protectors[variants[0].name])
    doc.warnings += resolved.warnings + notes
    if config.samples and config.secret_samples:
        doc.results.samples_contain_secrets = True
        doc.warnings.append(SECRETS_WARNING)
    models = _load(
        config, plugins, doc, space=space, device=device, checkpoints=checkpoints, log=log
    )
    surrogate_sets = _surrogate_sets(config, plugins, models)

    executor = get_executor(config.executor, config.ray_address, config.device)
    try:
        data, targets = _prepare(config, resolved, doc, models, (space, device, executor), t0, log)
        reserve_pools(protectors.values(), resolved.dataset, data.split, space, log)
        stage = _Stage(
            config=config,
            context=Context(
                config=config,
                data=data,
                targets=targets,
                models=models,
                device=device,
                executor=executor,
                registries=plugins.registries,
                log=log,
                attacks=_select(plugins, "attacks", config.attacks),
                adversaries=_select(plugins, "adversaries", config.adversaries),
                run_records=doc.results.measurements,
                warnings=doc.warnings,
            ),
            measurements=measurements,
            executor=executor,
        )
        for m in measurements:
            if m.scope == "run":
                _measure(m, stage.context, doc, doc.results.measurements, key="")
        _protect_all(stage, doc, protectors, surrogate_sets, (data, out, t_start))
    finally:
        executor.close()

    # Write and render.
    doc.timings["total_s"] = time.perf_counter() - t_start
    write_json_atomic(out / "results.json", doc)
    from veilbench.report import render_report

    render_report(doc, out / "report.html")
    log(f"wrote {out / 'results.json'} and {out / 'report.html'}")
    return doc


def _protect_all(
    stage: _Stage, doc: ResultsDocument, protectors: dict[str, Any], sets: list, where: tuple
) -> None:
    """Every protector over every surrogate set; with several protectors each finished one is
    written to ``results.json`` before the next starts (an interrupted zoo keeps them)."""
    data, out, t_start = where
    several = len(protectors) > 1
    for name, protector in protectors.items():
        # Data, galleries and clean answers are shared; each protector adds its own sets.
        doc.results.protector(name, _config_dict(protector))
        own = dataclasses.replace(
            stage,
            context=dataclasses.replace(stage.context, protector=protector, protector_name=name),
            veils=out / "veils" / (_folder(name) if several else ""),
        )
        for members in sets:
            try:
                _protect_and_evaluate(own, doc, members, data)
            except DataError as exc:  # with several protectors one failing loses only itself
                if not several:
                    raise
                stage.context.log(f"protector {name} failed with {'+'.join(members)}: {exc}")
                doc.problems.append(
                    {
                        "stage": "protect",
                        "protector": name,
                        "surrogates": "+".join(members),
                        "reason": str(exc),
                    }
                )
        if several:
            doc.timings["total_s"] = time.perf_counter() - t_start
            write_json_atomic(out / "results.json", doc)


def _folder(name: str) -> str:
    """A variant's name (``pixelate[block=8]``) as a folder name (``pixelate_block=8``)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")


def _select(plugins, kind: str, spec: str | None) -> list:
    """The registry entries a comma list names ([] for none)."""
    return plugins.registries[kind].select(spec) if spec and spec.strip() else []


def _load(config: RunConfig, plugins, doc: ResultsDocument, **kw: Any) -> dict:
    """The models ``--models`` selects, loaded (those that cannot be are recorded as skipped)."""
    log = kw["log"]
    model_entries = plugins.registries["models"].select(config.models)
    explicit = config.models.strip() != "all" and "*" not in config.models
    models, skipped = load_models(model_entries, explicit=explicit, **kw)
    if not models:
        raise ConfigError(
            "no model could be loaded: "
            + "; ".join(f"{s['model']}: {s['reason']}" for s in skipped)
        )
    doc.models = {n: m.card.to_dict() for n, m in models.items()}
    doc.skipped_models = skipped
    for s in skipped:
        log(f"skipped model {s['model']}: {s['reason']}")
    return models


def _prepare(config, resolved, doc, models, where, t0, log) -> tuple[EvalData, Targets]:
    """The run's photos, split and aligned, and every target's clean gallery."""
    space, device, executor = where
    data = prepare_data(resolved.dataset, config.protocol, space, progress=config.progress, log=log)
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
    doc.timings["gallery_embeddings_computed"] = {n: s.embedded for n, s in targets.states.items()}
    return data, targets


@dataclasses.dataclass
class _Stage:
    """What every surrogate set is protected and evaluated with."""

    config: RunConfig
    context: Context  # the run's part; each set adds its own
    measurements: list[Measurement]
    executor: Executor
    veils: Path = Path("veils")  # where this protector's veils are kept (resumed from)


def _measure(m: Measurement, ctx: Context, doc: ResultsDocument, records: dict, key: str) -> None:
    """One measurement into ``records``; a failure goes to ``problems`` and the run goes on."""
    try:
        record = m.evaluate(ctx)
    except Exception as exc:  # one broken measurement must not lose the others
        reason = f"{type(exc).__name__}: {exc}"
        ctx.log(f"measurement {m.name} failed{f' ({key})' if key else ''}: {reason}")
        problem = {"stage": "measure", "measurement": m.name, "reason": reason}
        doc.problems.append({**problem, "surrogates": key} if key else problem)
        return
    if record is not None:
        records[m.name] = record


def _protect_and_evaluate(stage: _Stage, doc: ResultsDocument, members: list[str], data: EvalData):
    """One surrogate set: protect, then every measurement, recorded into ``doc``."""
    run_ctx, config = stage.context, stage.config
    log, key = run_ctx.log, "+".join(members)
    # Protect.
    log(f"crafting with surrogate {key} ({run_ctx.protector_name}, {stage.executor.name} executor)")
    t0 = time.perf_counter()
    protected, failures = craft_and_protect(
        run_ctx.protector,
        [run_ctx.models[n] for n in members],
        data,
        device=run_ctx.device,
        seed=config.seed,
        veil_dir=stage.veils / key,
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
    # Evaluate: every surrogate-scope measurement, in order (each may read earlier records).
    t0 = time.perf_counter()
    record = doc.results.protector(run_ctx.protector_name).surrogates.setdefault(
        key, SurrogateResults(surrogates=members)
    )
    ctx = dataclasses.replace(
        run_ctx,
        data=data,
        members=members,
        protected=protected,
        craft_s=elapsed,
        crafted_images=sum(len(p.craft) for p in data.probes),
        records=record.measurements,
        warnings=doc.warnings,
    )
    for m in stage.measurements:
        if m.scope != "run":
            _measure(m, ctx, doc, record.measurements, key)
    record.evaluate_s = time.perf_counter() - t0


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
