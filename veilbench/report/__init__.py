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
from veilbench.results import write_text_atomic

TEMPLATES = Path(__file__).with_name("templates")

SUBSETS = {
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


def render_html(doc: dict[str, Any], extra_dirs: list[Path] | None = None) -> str:
    """The report page for a results document."""
    template = environment(extra_dirs).get_template("report.html")
    return template.render(doc=doc, view=build_view(doc))


def render_report(
    doc: dict[str, Any], path: str | Path, extra_dirs: list[Path] | None = None
) -> Path:
    """Write the report page atomically to ``path``."""
    return write_text_atomic(path, render_html(doc, extra_dirs))


# The view ------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty one (documents may be partial)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def _pick(value: Any, keys: str) -> dict[str, Any]:
    """Exactly ``keys`` (space-separated) from a possibly partial dict, missing ones as None."""
    d = _dict(value)
    return {k: d.get(k) for k in keys.split()}


def _mean(values: Iterable[float | None]) -> float | None:
    """Mean of the known values; None when there are none."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def members(surrogate: str) -> set[str]:
    """The models that crafted a veil: one name, or an ensemble written ``a+b``."""
    return set(surrogate.split("+"))


def build_view(doc: dict[str, Any]) -> dict[str, Any]:
    """Everything the templates show, derived from ``doc`` with every section present."""
    results = _dict(doc.get("results"))
    msr = {str(s): _dict(row) for s, row in _dict(results.get("msr")).items()}
    targets = list(_dict(doc.get("models")))
    for row in msr.values():  # a target may appear in the results without a model card
        targets += [t for t in row if t not in targets]
    config = _dict(doc.get("config"))
    dataset = _dict(doc.get("dataset"))
    split = _dict(doc.get("split"))
    probes = _list(split.get("probes"))
    image_metrics = _dict(results.get("image_metrics"))
    return {
        "protector": config.get("protector"),
        "models": _models(doc),
        "targets": targets,
        "dataset": _pick(dataset, "name images identities alignment synthetic description"),
        "synthetic": bool(dataset.get("synthetic")),
        "identities": len(probes) if probes else None,
        "distractors": split.get("distractor_images"),
        "warnings": [str(w) for w in _list(doc.get("warnings"))],
        "verdict": _verdict(msr, image_metrics),
        "msr_tables": [_msr_table(msr, targets, results, subset) for subset in SUBSETS],
        "image_metrics": _image_metrics(image_metrics),
        "reference": PAPER_REFERENCE,
        "charts": _charts(_dict(results.get("robustness")), targets),
        "robustness_on": config.get("robustness_on"),
        "impersonation": _impersonation(_dict(results.get("impersonation")), targets),
        "samples": _samples(_dict(results.get("samples"))),
        "cost": _cost(_dict(doc.get("timings"))),
        "environment": _dict(doc.get("environment")),
        "machine": _pick(doc.get("environment"), "device cpu_count torch_threads"),
        "device_resolved": config.get("device_resolved"),
        "config": config,
        "seeds": _seeds(config),
        "plugins": [
            _pick(p, "name package version builtin status error") for p in _list(doc.get("plugins"))
        ],
        "skipped_models": [_pick(s, "model reason") for s in _list(doc.get("skipped_models"))],
        "problems": [_problem(_dict(p)) for p in _list(doc.get("problems"))],
        "meta": {k: doc.get(k) for k in ("veilbench_version", "schema_version", "created_utc")},
    }


def _models(doc: dict[str, Any]) -> list[dict[str, Any]]:
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
        for name, card in ((n, _dict(c)) for n, c in _dict(doc.get("models")).items())
    ]


def _cell(msr: dict[str, dict[str, Any]], s: str, t: str, subset: str) -> dict[str, Any]:
    """One msr entry (msr, rank1_protected, rank1_clean, n), empty when absent."""
    return _dict(_dict(msr.get(s, {}).get(t)).get(subset))


#: What the report says where a protector cannot be undone (its recovered metrics are None).
NO_RECOVERY = "no recovery (protector cannot be undone)"


def _verdict(msr: dict[str, dict[str, Any]], image_metrics: dict[str, Any]) -> list[dict]:
    """The headline numbers: means over surrogate/target pairs and over surrogates."""
    white: list[float] = []
    black: list[float] = []
    for s, row in msr.items():
        for t in row:
            value = number(_cell(msr, s, t, "held_out").get("msr"))
            if value is not None:
                (white if t in members(s) else black).append(value)

    def metric(kind: str, key: str) -> float | None:
        return _mean([number(_dict(_dict(m).get(kind)).get(key)) for m in image_metrics.values()])

    return [
        {
            "label": "White-box MSR, held-out",
            "value": _mean(white),
            "pairs": len(white),
            "note": "the crafting model still recognises the protected face (higher = utility)",
        },
        {
            "label": "Black-box MSR, held-out",
            "value": _mean(black),
            "pairs": len(black),
            "note": "other models still match it (lower = privacy)"
            if black
            else "needs at least two models",
        },
        {
            "label": "Protected SSIM",
            "value": metric("protected", "ssim"),
            "pairs": None,
            "note": "lower = less of the face visible (paper 0.011–0.012)",
        },
        {
            "label": "Protected LPIPS",
            "value": metric("protected", "lpips"),
            "pairs": None,
            "note": "higher = looks less like the original (paper 1.247–1.287)",
        },
        {
            "label": "Recovered SSIM",
            "value": metric("recovered", "ssim"),
            "pairs": None,
            "note": NO_RECOVERY
            if image_metrics
            and all(_dict(m).get("recovered") is None for m in image_metrics.values())
            else "higher = better recovery with the veil (paper 0.868–0.869)",
        },
    ]


def _msr_table(
    msr: dict[str, dict[str, Any]], targets: list[str], results: dict[str, Any], subset: str
) -> dict[str, Any]:
    """One heatmap: a row per surrogate, a cell per target, and the clean rank-1 footer."""
    rows = []
    for s in msr:
        cells = []
        for t in targets:
            entry = _cell(msr, s, t, subset)
            value = number(entry.get("msr"))
            cells.append(
                {
                    "target": t,
                    "value": value,
                    "style": heat_style(value),
                    "white_box": t in members(s),
                    "rank1": number(entry.get("rank1_protected")),
                    "n": entry.get("n"),
                }
            )
        rows.append({"surrogate": s, "cells": cells})
    clean = _dict(results.get("clean"))
    clean_row = []
    for t in targets:
        value = number(_dict(clean.get(t)).get(subset))
        if value is None:  # older documents: the clean rank-1 sits in every msr entry
            value = next(
                (
                    number(_cell(msr, s, t, subset).get("rank1_clean"))
                    for s in msr
                    if number(_cell(msr, s, t, subset).get("rank1_clean")) is not None
                ),
                None,
            )
        clean_row.append({"target": t, "value": value})
    return {"subset": subset, "caption": SUBSETS[subset], "rows": rows, "clean": clean_row}


def _image_metrics(image_metrics: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """SSIM/LPIPS/PSNR rows per surrogate, for protected and for recovered images."""
    return {
        kind: [
            {
                "surrogate": s,
                **{k: number(_dict(_dict(m).get(kind)).get(k)) for k in ("ssim", "lpips", "psnr")},
                "n": _dict(_dict(m).get(kind)).get("n"),
                # recovered is None: the protector declared that it cannot be undone
                "no_recovery": NO_RECOVERY
                if kind == "recovered" and _dict(m).get(kind, {}) is None
                else None,
            }
            for s, m in image_metrics.items()
        ]
        for kind in ("protected", "recovered")
    }


_LINE_KEY = (
    Series("veiled photos", (), "#555555"),
    Series("clean photos, same attack", (), "#555555", dashed=True),
)


def _charts(robustness: dict[str, Any], targets: list[str]) -> list[dict[str, Any]]:
    """One SVG per (surrogate, attack): MSR per target (solid) and the clean baseline (dashed)."""
    charts = []
    for s, attacks in robustness.items():
        for attack, curves in _dict(attacks).items():
            curves = _dict(curves)
            strengths = [number(x) for x in _list(curves.get("strengths"))]
            keep = [i for i, x in enumerate(strengths) if x is not None]
            xs = [strengths[i] for i in keep]
            protected, clean = _dict(curves.get("protected")), _dict(curves.get("clean"))
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
                    label = f"{t}{' (white-box)' if t in members(s) else ''}"
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
            parameter = str(curves.get("parameter") or "strength")
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


def _impersonation(rates: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """The impersonation rate matrix, white-box cells flagged."""
    rows = [
        {
            "surrogate": s,
            "cells": [
                {
                    "target": t,
                    "value": number(_dict(row).get(t)),
                    "white_box": t in members(s),
                    "style": heat_style(_dict(row).get(t)),
                }
                for t in targets
            ],
        }
        for s, row in rates.items()
        if _dict(row)
    ]
    return {"targets": targets, "rows": rows}


def _samples(samples: dict[str, Any]) -> list[dict[str, Any]]:
    """Per identity, one row of images per surrogate (the same face under different veils)."""
    people: dict[str, list[dict[str, Any]]] = {}
    for s, by_identity in samples.items():
        for identity, images in _dict(by_identity).items():
            images = _dict(images)
            people.setdefault(str(identity), []).append(
                {
                    "surrogate": s,
                    "images": [
                        {"label": label, "uri": _safe_uri(images.get(key))}
                        for key, label in (
                            ("original", "original"),
                            ("protected", "protected"),
                            ("recovered", "recovered"),
                            ("veil", "the veil"),
                        )
                    ],
                }
            )
    return [{"identity": identity, "rows": rows} for identity, rows in people.items()]


def _safe_uri(value: Any) -> str | None:
    """An inline image URI, or None for anything that could make the page fetch something."""
    return value if isinstance(value, str) and _DATA_URI.match(value) else None


def _cost(timings: dict[str, Any]) -> dict[str, Any]:
    """Crafting time per surrogate and the run's other stage timings."""
    evaluate = _dict(timings.get("evaluate_s"))
    rows = [
        {
            "surrogate": s,
            **{k: number(_dict(c).get(k)) for k in ("total", "per_veil", "per_image")},
            "veils": _dict(c).get("veils"),
            "evaluate": number(evaluate.get(s)),
        }
        for s, c in _dict(timings.get("craft_s")).items()
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
