"""The HTML report: rendered from a results document alone (so old runs re-render).

The page is one self-contained file: inline CSS, images as data URIs, charts as inline SVG made
in Python; no JavaScript, no network. ``build_view`` turns the document into plain, complete
structures: the provenance parts here, and one section per registered measurement with a
template (the measurement builds its section's data, :meth:`Measurement.view`), in the
measurements' order; the headline gathers their headline figures. Templates receive ``doc``
(the raw document), ``view``, and in a section ``section`` (``id``, ``title``, ``data``).
``environment(extra_dirs)`` puts a user's folders first, then the measurements' own template
folders, so any template or ``_partial.html`` can be overridden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from veilbench.files import write_text_atomic
from veilbench.measurements import registered
from veilbench.measurements.charts import number
from veilbench.measurements.contract import Measurement
from veilbench.results import ResultsDocument

TEMPLATES = Path(__file__).with_name("templates")


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or "n/a" for null, NaN and non-numbers."""
    v = number(value)
    return "n/a" if v is None else f"{v:.{digits}f}"


def full(value: Any) -> str:
    """A number at full (round-trip) precision for ``data-value``; "null" when missing."""
    v = number(value)
    return "null" if v is None else repr(v)


def environment(
    extra_dirs: list[Path] | None = None, measurements: dict[str, Measurement] | None = None
) -> jinja2.Environment:
    """Templates from ``extra_dirs`` first (user overrides), then the measurements' folders,
    then veilbench's own."""
    own = [m.templates for m in (measurements or {}).values() if m.templates is not None]
    loader = jinja2.FileSystemLoader([*(extra_dirs or []), *own, TEMPLATES])
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = fmt
    env.filters["full"] = full
    return env


def render_html(
    doc: ResultsDocument | dict[str, Any],
    extra_dirs: list[Path] | None = None,
    measurements: dict[str, Measurement] | None = None,
) -> str:
    """The report page for a results document (a dict is read through the contract first)."""
    measurements = registered() if measurements is None else measurements
    if not isinstance(doc, ResultsDocument):
        doc = ResultsDocument.from_dict(doc, measurements)
    template = environment(extra_dirs, measurements).get_template("report.html")
    return template.render(doc=doc, view=build_view(doc, measurements))


def render_report(
    doc: ResultsDocument | dict[str, Any],
    path: str | Path,
    extra_dirs: list[Path] | None = None,
    measurements: dict[str, Measurement] | None = None,
) -> Path:
    """Write the report page atomically to ``path``."""
    return write_text_atomic(path, render_html(doc, extra_dirs, measurements))


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


def with_interval(figure: dict[str, Any]) -> dict[str, Any]:
    """A headline figure with the interval of the rates it summarises (``rates``): one rate's
    own 95% interval, or for a mean of several cells the span of their intervals."""
    rates = [r for r in figure.get("rates") or [] if r is not None and r.interval is not None]
    known = [r.interval for r in rates if r.interval.low is not None]
    if not known:
        return figure
    photos = sorted({r.photos for r in rates})
    people = sorted({r.identities for r in rates if r.identities is not None})
    counts = "-".join(map(str, dict.fromkeys([photos[0], photos[-1]]))) + " photos"
    if people:
        counts += " / " + "-".join(map(str, dict.fromkeys([people[0], people[-1]]))) + " people"
    return {
        **figure,
        "interval": (min(i.low for i in known), max(i.high for i in known)),
        "interval_note": "95% interval"
        + (f": the span of the {len(known)} cells' intervals" if len(known) > 1 else ""),
        "counts": counts,
    }


def build_view(
    doc: ResultsDocument, measurements: dict[str, Measurement] | None = None
) -> dict[str, Any]:
    """Everything the templates show, derived from the typed document, every section present."""
    measurements = registered() if measurements is None else measurements
    doc.derive(measurements)
    config = doc.config
    split = doc.split
    probes = _list(split.get("probes"))
    sets, run = doc.results.sets(), doc.run_view()
    return {
        "protector": ", ".join(doc.results.protectors) or config.get("protector"),
        "models": _models(doc),
        "targets": run.targets,
        "dataset": _pick(doc.dataset, "name images identities alignment synthetic description"),
        "synthetic": bool(doc.dataset.get("synthetic")),
        "profile": config.get("profile_applied"),
        "identities": len(probes) if probes else None,
        "distractors": split.get("distractor_images"),
        "warnings": [str(w) for w in doc.warnings],
        "verdict": [with_interval(h) for m in measurements.values() for h in m.headline(sets, run)],
        "sections": [
            {
                "name": m.name,
                "id": m.anchor or m.name.replace("_", "-"),
                "title": m.title,
                "nav": m.nav or m.title,
                "template": m.template,
                "data": m.view(sets, run),
            }
            for m in measurements.values()
            if m.template
        ],
        "samples_contain_secrets": doc.results.samples_contain_secrets,
        "environment": doc.environment,
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
    if p.get("stage") == "measure":
        what = f"measurement {p.get('measurement')}" + (
            f" ({p['surrogates']})" if p.get("surrogates") else ""
        )
    return {"identity": p.get("identity", ""), "what": what, "reason": p.get("reason", "")}
