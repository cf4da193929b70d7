"""The HTML report: rendered from a results document alone (so old runs re-render).

The page is one self-contained file: inline CSS, images as data URIs, charts as inline SVG made
in Python; no JavaScript, no network. ``build_view`` turns the results document into plain,
complete structures (every optional section present, possibly empty; missing numbers as None) so
the templates stay simple and never crash on partial documents. Templates receive both ``doc``
(the raw document) and ``view``; ``environment(extra_dirs)`` puts a user's folders first, so any
template or ``_partial.html`` can be overridden.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2

from veilbench.report.charts import PALETTE, Series, heat_style, line_chart, number
from veilbench.results import Results, ResultsDocument, write_text_atomic

TEMPLATES = Path(__file__).with_name("templates")

SUBSETS = {  # the results' subsets, described for readers
    "craft": "crafting photos (the veil was optimised on these)",
    "held_out": "held-out photos of the same people (never seen while crafting)",
}

# The paper's figures (Table 1: protected vs original; Table 2: recovered vs original).
PAPER_REFERENCE: dict[str, list[dict[str, str]]] = {
    "protected": [
        {"method": "veil (paper, Table 1)", "ssim": "0.011–0.012", "lpips": "1.247–1.287"},
        {"method": "V-UAP (paper, Table 1)", "ssim": "0.034–0.043", "lpips": "0.710–0.785"},
    ],
    "recovered": [
        {"method": "veil (paper, Table 2)", "ssim": "0.868–0.869", "lpips": "0.046–0.047"},
    ],
}

# Only inline raster images: a results file must not make the page fetch anything.
_DATA_URI = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$")


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or "n/a" for null, NaN and non-numbers."""
    v = number(value)
    return "n/a" if v is None else f"{v:.{digits}f}"


def full(value: Any) -> str:
    """A number at full (round-trip) precision for ``data-value``; "null" when missing."""
    v = number(value)
    return "null" if v is None else repr(v)


def environment(extra_dirs: list[Path] | None = None) -> jinja2.Environment:
    """Templates from ``extra_dirs`` first (user overrides), then veilbench's own."""
    loader = jinja2.FileSystemLoader([*(extra_dirs or []), TEMPLATES])
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = fmt
    env.filters["full"] = full
    return env


def render_html(doc: ResultsDocument | dict[str, Any], extra_dirs: list[Path] | None = None) -> str:
    """The report page for a results document (a dict is read through the contract first)."""
    if not isinstance(doc, ResultsDocument):
        doc = ResultsDocument.from_dict(doc)
    template = environment(extra_dirs).get_template("report.html")
    return template.render(doc=doc, view=build_view(doc))


def render_report(
    doc: ResultsDocument | dict[str, Any], path: str | Path, extra_dirs: list[Path] | None = None
) -> Path:
    """Write the report page atomically to ``path``."""
    return write_text_atomic(path, render_html(doc, extra_dirs))


# The view ------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty one (provenance sections are open dicts)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def _pick(value: Any, keys: str) -> dict[str, Any]:
    """Exactly ``keys`` (space-separated) from a provenance dict, missing ones as None."""
    d = _dict(value)
    return {k: d.get(k) for k in keys.split()}


def _mean(values: Iterable[float | None]) -> float | None:
    """Mean of the known values; None when there are none."""
    known = [v for v in (number(x) for x in values) if v is not None]
    return sum(known) / len(known) if known else None


def build_view(doc: ResultsDocument) -> dict[str, Any]:
    """Everything the templates show, derived from the typed document, every section present."""
    results = doc.results
    targets = list(doc.models)
    targets += [t for t in results.targets if t not in targets]
    config = doc.config
    split = doc.split
    probes = _list(split.get("probes"))
    return {
        "protector": config.get("protector"),
        "models": _models(doc),
        "targets": targets,
        "dataset": _pick(doc.dataset, "name images identities alignment synthetic description"),
        "synthetic": bool(doc.dataset.get("synthetic")),
        "profile": config.get("profile_applied"),
        "identities": len(probes) if probes else None,
        "distractors": split.get("distractor_images"),
        "warnings": [str(w) for w in doc.warnings],
        "verdict": _verdict(results),
        "msr_tables": [_msr_table(results, targets, subset) for subset in SUBSETS],
        "convergence": _convergence(results),
        "image_metrics": _image_metrics(results),
        "reference": PAPER_REFERENCE,
        "charts": _charts(results, targets),
        "robustness_on": config.get("robustness_on"),
        "impersonation": _impersonation(results, targets),
        "adversaries": _adversaries(results, targets),
        "perception": _perception(results),
        "samples": _samples(results),
        "samples_contain_secrets": results.samples_contain_secrets,
        "cost": _cost(results, doc.timings),
        "environment": doc.environment,
        "machine": _pick(doc.environment, "device cpu_count torch_threads"),
        "device_resolved": config.get("device_resolved"),
        "config": config,
        "seeds": _seeds(config),
        "plugins": [_pick(p, "name package version builtin status error") for p in doc.plugins],
        "skipped_models": [_pick(s, "model reason") for s in doc.skipped_models],
        "problems": [_problem(_dict(p)) for p in doc.problems],
        "meta": {
            "veilbench_version": doc.veilbench_version,
            "schema_version": doc.schema_version,
            "created_utc": doc.created_utc,
        },
    }


def _models(doc: ResultsDocument) -> list[dict[str, Any]]:
    """The model cards, one complete dict per loaded model."""
    return [
        {
            "name": name,
            "architecture": card.get("architecture"),
            "embedding_size": card.get("embedding_size"),
            "pretrained": card.get("pretrained"),
            "licence": card.get("licence"),
            "weights": [_pick(w, "name sha256") for w in _list(card.get("weights"))],
        }
        for name, card in ((n, _dict(c)) for n, c in doc.models.items())
    ]


#: What the report says where a protector cannot be undone (its recovered metrics are None).
NO_RECOVERY = "no recovery (protector cannot be undone)"


def _verdict(results: Results) -> list[dict]:
    """The headline numbers, from the privacy summary (derived in one place: the contract)."""
    privacy = [rates["held_out"] for rates in results.privacy().values()]
    white = [r.service_msr for r in privacy if r.service_msr is not None]
    black = [r.attacker_msr for r in privacy if r.attacker_msr is not None]
    metrics = [s.image_metrics for s in results.surrogates.values()]

    def quality(kind: str, key: str) -> float | None:
        return _mean(getattr(getattr(m, kind), key) for m in metrics if getattr(m, kind))

    recovered = quality("recovered", "ssim")
    unconverged = sum(len(s.unconverged()) for s in results.surrogates.values())
    return [
        {
            "label": "White-box MSR, held-out",
            "value": _mean(white),
            "pairs": len(white),
            "note": "the crafting model still recognises the protected face (higher = utility)"
            + (
                f"; includes {unconverged} unconverged veil{'s' if unconverged != 1 else ''}: "
                "see Convergence"
                if unconverged
                else ""
            ),
        },
        {
            "label": "Black-box MSR, held-out",
            "value": _mean(black),
            "pairs": len(black),
            "note": "other models still match it (lower = privacy)"
            if black
            else "needs at least two models",
        },
        _under_attack(results),
        {
            "label": "Protected SSIM",
            "value": quality("protected", "ssim"),
            "pairs": None,
            "note": "lower = less of the face visible (paper 0.011–0.012)",
        },
        {
            "label": "Protected LPIPS",
            "value": quality("protected", "lpips"),
            "pairs": None,
            "note": "higher = looks less like the original (paper 1.247–1.287)",
        },
        {
            "label": "Recovered SSIM",
            "value": recovered,
            "pairs": None,
            "note": "higher = better recovery with the veil (paper 0.868–0.869)"
            if any(m.recovered for m in metrics) or not metrics
            else NO_RECOVERY,
        },
    ]


def _under_attack(results: Results) -> dict:
    """The headline beside black-box MSR: the best adversary's reconstructions re-identified."""
    best = [rates["held_out"] for rates in results.privacy().values()]
    best = [r for r in best if r.reconstruction_rank1 is not None]
    which = sorted({str(r.best_adversary) for r in best})
    return {
        "label": "Re-identified after attack",
        "value": _mean(r.reconstruction_rank1 for r in best),
        "pairs": len(best),
        "note": f"best adversary ({', '.join(which)}): an attacker's model re-identifies its "
        "reconstructions (higher = privacy lost)"
        if best
        else "no adversary ran (--adversaries) or no attacker's model",
        "alarm": True,
    }


def _msr_table(results: Results, targets: list[str], subset: str) -> dict[str, Any]:
    """One heatmap: a row per surrogate, a cell per target, and the clean rank-1 footer."""
    rows = []
    for key, s in results.surrogates.items():
        cells = []
        for t in targets:
            cell = s.msr.get(t, {}).get(subset)
            value = number(cell.msr) if cell else None
            cells.append(
                {
                    "target": t,
                    "value": value,
                    "style": heat_style(value),
                    "white_box": s.white_box(t),
                    # a white-box figure from veils that never reached their criteria
                    "unconverged": len(s.unconverged()) if s.white_box(t) else 0,
                    "rank1": number(cell.rank1_protected) if cell else None,
                    "n": cell.n if cell else None,
                }
            )
        rows.append({"surrogate": key, "cells": cells})
    clean_row = [
        {"target": t, "value": number(results.clean.get(t, {}).get(subset))} for t in targets
    ]
    return {"subset": subset, "caption": SUBSETS[subset], "rows": rows, "clean": clean_row}


def _convergence(results: Results) -> list[dict[str, Any]]:
    """Per surrogate set: every veil's convergence record, unconverged ones first."""
    view = []
    for key, s in results.surrogates.items():
        if not s.convergence:
            continue
        rows = [
            {
                "identity": identity,
                "converged": c.converged,
                "iterations": c.iterations,
                "cap": c.cap,
                "until": c.until,
                "rms": number(c.rms),
                "fits": [
                    {
                        "model": m,
                        "cosine_min": number(f.cosine_min),
                        "threshold": number(f.threshold),
                        "matched": number(f.matched),
                    }
                    for m, f in c.surrogates.items()
                ],
            }
            for identity, c in sorted(
                s.convergence.items(), key=lambda kv: (kv[1].converged is not False, kv[0])
            )
        ]
        view.append(
            {"surrogate": key, "veils": len(rows), "unconverged": s.unconverged(), "rows": rows}
        )
    return view


def _image_metrics(results: Results) -> dict[str, list[dict[str, Any]]]:
    """SSIM/LPIPS/PSNR rows per surrogate, for protected and for recovered images."""
    view: dict[str, list[dict[str, Any]]] = {"protected": [], "recovered": []}
    for key, s in results.surrogates.items():
        for kind in view:
            q = getattr(s.image_metrics, kind)
            view[kind].append(
                {
                    "surrogate": key,
                    **{k: number(getattr(q, k)) if q else None for k in ("ssim", "lpips", "psnr")},
                    "n": q.n if q else None,
                    # None: the protector declared that it cannot be undone
                    "no_recovery": NO_RECOVERY if q is None and kind == "recovered" else None,
                }
            )
    return view


_LINE_KEY = (
    Series("veiled photos", (), "#555555"),
    Series("clean photos, same attack", (), "#555555", dashed=True),
)


def _charts(results: Results, targets: list[str]) -> list[dict[str, Any]]:
    """One SVG per (surrogate, attack): MSR per target (solid) and the clean baseline (dashed)."""
    charts = []
    for s, surrogate in results.surrogates.items():
        for attack, curves in surrogate.robustness.items():
            strengths = [number(x) for x in curves.strengths]
            keep = [i for i, x in enumerate(strengths) if x is not None]
            xs = [strengths[i] for i in keep]
            protected, clean = curves.protected, curves.clean
            names = [t for t in targets if t in protected or t in clean]
            names += [t for t in [*protected, *clean] if t not in names]
            series, rows = [], []
            for i, t in enumerate(names):
                colour = PALETTE[i % len(PALETTE)]
                for kind, curve, dashed in (("veiled", protected, False), ("clean", clean, True)):
                    if t not in curve:
                        continue
                    raw = _list(curve[t])
                    values = [number(raw[j]) if j < len(raw) else None for j in keep]
                    label = f"{t}{' (white-box)' if surrogate.white_box(t) else ''}"
                    # the clean line shares its target's colour, so one legend entry covers both
                    series.append(
                        Series(
                            f"{t}, clean photos" if dashed else label,
                            values,
                            colour,
                            dashed,
                            in_legend=not dashed,
                        )
                    )
                    rows.append({"target": t, "kind": kind, "points": values})
            parameter = curves.parameter or "strength"
            svg = (
                line_chart(
                    xs,
                    series,
                    x_label=f"{attack} {parameter}",
                    y_label="MSR",
                    title=f"MSR under {attack} vs {parameter}, veils crafted on {s}",
                    key=_LINE_KEY,
                    data={"surrogate": s, "attack": attack},
                )
                if xs and series
                else None
            )
            charts.append(
                {
                    "surrogate": s,
                    "attack": attack,
                    "parameter": parameter,
                    "svg": svg,
                    "strengths": xs,
                    "rows": rows,
                }
            )
    return charts


def _adversaries(results: Results, targets: list[str]) -> dict[str, Any]:
    """Per surrogate set, one row per adversary and k; and the reconstruction image grid."""
    rows = []
    for key, s in results.surrogates.items():
        for a in s.adversaries:
            black = [c.rank1 for t, c in a.baseline.items() if not s.white_box(t)]
            rows.append(
                {
                    "surrogate": key,
                    "adversary": a.adversary,
                    "k": a.k,
                    "threat": a.threat,
                    "identities": a.identities,
                    "cells": [
                        {
                            "target": t,
                            "rank1": number(a.reid[t].rank1) if t in a.reid else None,
                            "msr": number(a.reid[t].msr) if t in a.reid else None,
                            "white_box": s.white_box(t),
                            "style": heat_style(a.reid[t].rank1 if t in a.reid else None),
                        }
                        for t in targets
                    ],
                    "baseline_black": _mean(black),
                    "ssim": number(a.quality.ssim),
                    "lpips": number(a.quality.lpips),
                    "psnr": number(a.quality.psnr),
                }
            )
    grid = [
        {
            "surrogate": key,
            "identity": str(identity),
            "images": [
                {"label": str(label), "uri": _safe_uri(uri)} for label, uri in images.items()
            ],
        }
        for key, s in results.surrogates.items()
        for identity, images in s.adversary_samples.items()
    ]
    return {"targets": targets, "rows": rows, "grid": grid}


def _impersonation(results: Results, targets: list[str]) -> dict[str, Any]:
    """The impersonation rate matrix, white-box cells flagged."""
    rows = [
        {
            "surrogate": key,
            "cells": [
                {
                    "target": t,
                    "value": number(s.impersonation.get(t)),
                    "white_box": s.white_box(t),
                    "style": heat_style(s.impersonation.get(t)),
                }
                for t in targets
            ],
        }
        for key, s in results.surrogates.items()
        if s.impersonation
    ]
    return {"targets": targets, "rows": rows}


def _perception(results: Results) -> dict[str, Any]:
    """Per surrogate set: the face-detector rate and, per processing, the mean black-box
    (attacker's) and white-box rank-1 on processed protected photos beside processed originals."""
    rows, processings = [], []
    for key, s in results.surrogates.items():
        p = s.perception
        if p is None:
            continue
        cells = {}
        for name, cell in p.processed.items():
            processings += [name] if name not in processings else []
            cells[name] = {
                "black": s.attacker_mean(cell.protected),
                "black_clean": s.attacker_mean(cell.clean),
                "white": s.service_mean(cell.protected),
                "n": cell.n,
            }
        face = p.face
        rows.append(
            {
                "surrogate": key,
                "detected": None if face is None else number(face.detected),
                "detected_clean": None if face is None else number(face.detected_clean),
                "landmark_error": None if face is None else number(face.landmark_error),
                "n": 0 if face is None else face.n,
                "threshold": None if face is None else face.score_threshold,
                "cells": cells,
            }
        )
    return {"rows": rows, "processings": processings}


#: The images a sample row shows, in order. The veil is the secret: it is in a document only
#: when ``secret_samples = true`` was asked for (the report then says so).
SAMPLE_IMAGES = (("original", "original"), ("protected", "protected"), ("recovered", "recovered"))
SECRET_IMAGES = (("veil", "the veil"),)


def _samples(results: Results) -> list[dict[str, Any]]:
    """Per identity, one row of images per surrogate (the same person under different veils)."""
    shown = SAMPLE_IMAGES + (SECRET_IMAGES if results.samples_contain_secrets else ())
    people: dict[str, list[dict[str, Any]]] = {}
    for key, s in results.surrogates.items():
        for identity, images in s.samples.items():
            people.setdefault(str(identity), []).append(
                {
                    "surrogate": key,
                    "images": [
                        {"label": label, "uri": _safe_uri(images.get(name))}
                        for name, label in shown
                    ],
                }
            )
    return [{"identity": identity, "rows": rows} for identity, rows in people.items()]


def _safe_uri(value: Any) -> str | None:
    """An inline image URI, or None for anything that could make the page fetch something."""
    return value if isinstance(value, str) and _DATA_URI.match(value) else None


def _cost(results: Results, timings: dict[str, Any]) -> dict[str, Any]:
    """Crafting time per surrogate and the run's other stage timings."""
    rows = [
        {
            "surrogate": key,
            **{
                k: number(getattr(s.craft_timing, k)) if s.craft_timing else None
                for k in ("total", "per_veil", "per_image")
            },
            "veils": s.craft_timing.veils if s.craft_timing else None,
            "evaluate": number(s.evaluate_s),
        }
        for key, s in results.surrogates.items()
    ]
    stages = [
        (label, number(timings.get(key)))
        for key, label in (
            ("prepare_s", "prepare data"),
            ("clean_embedding_s", "clean embeddings"),
            ("total_s", "whole run"),
        )
        if key in timings
    ]
    return {"rows": rows, "stages": stages}


def _seeds(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every setting named like a seed, at any depth of the config, as (dotted path, value)."""
    found = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            found += _seeds(value, path + ".")
        elif "seed" in str(key).lower():
            found.append((path, value))
    return found


def _problem(p: dict[str, Any]) -> dict[str, Any]:
    """An unusable file or a skipped identity, as (identity, what, reason)."""
    what = p.get("file") or (f"{p['images']} images" if "images" in p else "")
    return {"identity": p.get("identity", ""), "what": what, "reason": p.get("reason", "")}
