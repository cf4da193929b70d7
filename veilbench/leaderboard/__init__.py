"""The leaderboard: protectors ranked by worst-case privacy over one or more results files.

``build_leaderboard(docs)`` reads every protector variant of every document into a row
(:mod:`~veilbench.leaderboard.rows`), groups the rows by what they were measured on (dataset,
its fingerprint and alignment, the protocol, the split: numbers from different data are never
ranked together), ranks each group by worst-case re-identification (lower first; ties broken
by the declared utility) and draws each group's privacy-utility frontier per promise
(:mod:`~veilbench.leaderboard.frontier`). ``render_leaderboard_html`` and ``render_markdown``
show the same table cells: both print each cell's one ``text``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veilbench.leaderboard.frontier import Panel, panels
from veilbench.leaderboard.rows import Row, read_row
from veilbench.leaderboard.table import TEXT, Cell, Column, table
from veilbench.measurements import registered
from veilbench.measurements.contract import Measurement
from veilbench.plugins import Plugins, get_plugins
from veilbench.report import environment
from veilbench.results import ResultsDocument

TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Group:
    """Rows measured on the same data, ranked; ``reason`` says why it is a group of its own."""

    key: dict[str, Any]
    heading: str
    facts: str  # dataset, models, people / photos
    rows: list[Row]
    attackers: list[str]
    columns: list[Column]
    cells: list[list[Cell]]
    panels: list[Panel]
    reason: str = ""
    sources: list[str] = field(default_factory=list)


@dataclass
class Leaderboard:
    groups: list[Group]
    notes: list[str]


def split_signature(split: dict[str, Any]) -> str:
    """A short hash of which photos were probes and how many distractors (the split)."""
    core = {"probes": split.get("probes"), "distractors": split.get("distractor_images")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:12]


def group_key(doc: ResultsDocument) -> dict[str, Any]:
    """What must be equal for two documents' numbers to be ranked together."""
    d = doc.dataset
    return {
        "dataset": d.get("name"),
        "fingerprint": d.get("fingerprint"),
        "alignment": d.get("alignment"),
        "protocol": doc.config.get("protocol") or {},
        "split": split_signature(doc.split),
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """How group key ``b`` differs from ``a``, in words."""

    def shown(key: str, value: Any) -> str:  # a fingerprint's first 12 hex digits say enough
        text = "not recorded" if value is None else str(value)
        return text[:12] if key == "fingerprint" else text

    out = [
        f"{k} {shown(k, b[k])} (not {shown(k, a[k])})"
        for k in ("dataset", "fingerprint", "alignment")
        if a[k] != b[k]
    ]
    pa, pb = a["protocol"], b["protocol"]
    out += [
        f"protocol {k} {pb.get(k)} (not {pa.get(k)})"
        for k in sorted(set(pa) | set(pb))
        if pa.get(k) != pb.get(k)
    ]
    if a["split"] != b["split"]:
        out.append("split: other probe photos")
    return out


def rank_key(row: Row) -> tuple[Any, ...]:
    """Lower worst-case re-identification first; then higher utility; unmeasured last."""
    score = row.utility_score()
    worst = row.worst.value
    return (worst is None, worst or 0.0, score is None, -(score or 0.0), row.label)


def _facts(docs: Sequence[ResultsDocument]) -> str:
    """The dataset, the models and the people / photos of a group (equal split: any doc)."""
    doc = docs[0]
    models = list(dict.fromkeys(m for d in docs for m in [*d.models, *d.results.targets]))
    probes = doc.split.get("probes") or []
    photos = sum(len(p.get("craft") or []) + len(p.get("held_out") or []) for p in probes)
    d = doc.dataset
    name = d.get("name") or "unknown dataset"
    fp = f" (fingerprint {str(d['fingerprint'])[:12]})" if d.get("fingerprint") else ""
    people = f"{len(probes)} people, {photos} photos protected" if probes else "split not recorded"
    return f"Dataset: {name}{fp}; models: {', '.join(models) or 'none recorded'}; {people}"


def _short(source: str) -> str:
    """A run's folder name for ``.../run/results.json``, else the file's name."""
    path = Path(source)
    return path.parent.name if path.name == "results.json" and path.parent.name else path.name


def _label_duplicates(rows: list[Row]) -> None:
    """Two files holding the same variant name: each row says which file it is from (its
    folder's name, or its whole path when the folder names collide too)."""
    for variant in {r.variant for r in rows}:
        same = [r for r in rows if r.variant == variant]
        if len(same) > 1:
            shorts = [_short(r.source) for r in same]
            unique = len(set(shorts)) == len(shorts)
            for row, short in zip(same, shorts, strict=True):
                row.label = f"{variant} ({short if unique else row.source})"


def _group(
    key: dict[str, Any], members: list[tuple[ResultsDocument, str]], plugins: Plugins
) -> Group:
    rows = [
        read_row(name, p, [w for w in doc.results.sets() if w.protector == name], doc, plugins, src)
        for doc, src in members
        for name, p in doc.results.protectors.items()
    ]
    _label_duplicates(rows)
    rows.sort(key=rank_key)
    attackers = list(dict.fromkeys(t for r in rows for t in r.attackers))
    columns, cells = table(rows, attackers)
    d = key["dataset"] or "unknown dataset"
    protocol = ", ".join(f"{k} {v}" for k, v in key["protocol"].items()) or "not recorded"
    return Group(
        key=key,
        heading=f"{d}, protocol: {protocol}",
        facts=_facts([doc for doc, _ in members]),
        rows=rows,
        attackers=attackers,
        columns=columns,
        cells=cells,
        panels=panels(rows),
        sources=[src for _, src in members],
    )


def build_leaderboard(
    docs: Sequence[ResultsDocument],
    sources: Sequence[str] | None = None,
    measurements: dict[str, Measurement] | None = None,
    plugins: Plugins | None = None,
) -> Leaderboard:
    """The ranked groups of every protector variant in ``docs`` (``sources``: their files)."""
    measurements = registered() if measurements is None else measurements
    plugins = plugins or get_plugins()
    names = list(sources or [f"results {i + 1}" for i in range(len(docs))])
    grouped: dict[str, tuple[dict[str, Any], list[tuple[ResultsDocument, str]]]] = {}
    for doc, src in zip(docs, names, strict=True):
        doc.derive(measurements)
        key = group_key(doc)
        grouped.setdefault(json.dumps(key, sort_keys=True, default=str), (key, []))[1].append(
            (doc, src)
        )
    groups = [_group(key, members, plugins) for key, members in grouped.values()]
    for g in groups[1:]:
        g.reason = (
            "Ranked apart from the first table: measured on other data ("
            + "; ".join(differences(groups[0].key, g.key))
            + "), so its numbers are not comparable."
        )
    return Leaderboard(groups, _notes(groups, docs))


def _notes(groups: list[Group], docs: Sequence[ResultsDocument]) -> list[str]:
    notes = []
    if len(groups) > 1:
        notes.append(
            f"{len(groups)} separate rankings: results measured on different datasets, "
            "protocols or splits are never ranked together (each table says why)."
        )
    wide = sum(c.wide for g in groups for row in g.cells for c in row)
    if wide:
        notes.append(
            f"Small sample: {wide} figure{'s' if wide != 1 else ''} with a 95% interval wider "
            "than 0.3 (marked); rows whose intervals overlap are not reliably ordered."
        )
    if any(d.dataset.get("synthetic") for d in docs):
        notes.append("Synthetic faces in at least one file: those numbers are not meaningful.")
    return notes


def render_leaderboard_html(board: Leaderboard) -> str:
    """The self-contained page: inline CSS, inline SVG, a small inline sorting script."""
    template = environment([TEMPLATES]).get_template("leaderboard.html")
    return template.render(board=board, text_columns=TEXT)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(board: Leaderboard) -> str:
    """The main tables as Markdown, cell for cell the texts of the HTML tables."""
    lines = ["# veilbench leaderboard", ""]
    lines += [f"- {note}" for note in board.notes] + ([""] if board.notes else [])
    for g in board.groups:
        keep = [i for i, c in enumerate(g.columns) if c.markdown]
        lines += [f"## {_md(g.heading)}", "", _md(g.facts) + ".", ""]
        if g.reason:
            lines += [_md(g.reason), ""]
        lines.append("| " + " | ".join(_md(g.columns[i].heading) for i in keep) + " |")
        lines.append(
            "|" + "|".join("---" if g.columns[i].key in TEXT else "---:" for i in keep) + "|"
        )
        for row, cells in zip(g.rows, g.cells, strict=True):
            texts = [
                cells[i].text
                + (f" ({cells[i].by})" if cells[i].by else "")
                + (" (demo)" if cells[i].key == "protector" and row.info.demo else "")
                for i in keep
            ]
            lines.append("| " + " | ".join(_md(t) for t in texts) + " |")
        lines.append("")
    return "\n".join(lines)
