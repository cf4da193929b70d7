"""The main ranking table: its columns and cells, one text per cell that the HTML and the
Markdown both print (so the two tables cannot disagree)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veilbench.leaderboard.figures import Figure
from veilbench.leaderboard.rows import Row

TEXT = ("protector", "promise", "threats")  # columns sorted and aligned as text


@dataclass(frozen=True)
class Column:
    """A main-table column; ``markdown`` columns are in the Markdown table too."""

    key: str
    heading: str
    title: str = ""
    markdown: bool = True


#: The figure columns after the per-attacker ones (keys of ``Row.figures``).
FIGURE_COLUMNS = (
    Column("blackbox", "black-box rank-1 (mean)", "mean over attacker models, held-out photos"),
    Column("tar_black", "TAR@1e-3 black-box", "attacker verifies the person 1:1; PSR = 1 - TAR"),
    Column("ssim", "SSIM", "protected vs original (visual cost)"),
    Column("lpips", "LPIPS", "protected vs original (visual cost)"),
    Column("psnr", "PSNR (dB)", "protected vs original (visual cost)"),
    Column("service_msr", "service MSR (white-box)", "utility white_box_tar only"),
    Column("service_tar", "service TAR@1e-3 (white-box)", "utility white_box_tar only"),
    Column("recovered_ssim", "recovered SSIM", "recoverable protectors only"),
    Column("recovered_psnr", "recovered PSNR (dB)", "recoverable protectors only"),
    Column("cost_photo", "cost / photo", "crafting seconds per photo"),
    Column("cost_person", "cost / person", "crafting seconds per person", markdown=False),
)


@dataclass
class Cell:
    """One cell as both tables print it; ``sort`` is the browser's sort key."""

    key: str
    text: str
    sort: float | str | None
    title: str = ""
    by: str = ""  # the worst case's attack
    wide: bool = False
    numeric: bool = True


def _figure_cell(key: str, f: Figure, by: str = "") -> Cell:
    return Cell(key, f.text, f.value, f.title, by, f.wide)


def _threat(t: dict[str, Any]) -> str:
    """ "parrot: NOT RUN", "purification: jpeg", "parrot: parrot (not declared)"."""
    what = t["what"] if t["run"] else "NOT RUN"
    return f"{t['threat']}: {what}" + ("" if t["declared"] else " (not declared)")


def table(rows: Sequence[Row], attackers: Sequence[str]) -> tuple[list[Column], list[list[Cell]]]:
    """The main table's columns and cells (the HTML and the Markdown print the same texts)."""
    columns = [
        Column("rank", "#", "rank by worst-case privacy, then utility"),
        Column("protector", "protector", "the variant's name in the results file"),
        Column("promise", "promise", "what it promises (its frontier panel)"),
        Column("worst", "worst-case re-id", "highest black-box re-identification of any threat"),
        *(Column(f"attacker:{t}", f"rank-1 · {t}", "held-out", markdown=False) for t in attackers),
        *FIGURE_COLUMNS,
        Column("threats", "threat models", "declared by the protector / run", markdown=False),
    ]
    cells = []
    for i, row in enumerate(rows, 1):
        missing = Figure.missing(f"{row.label} was not attacked by this model")
        threats = "; ".join(_threat(t) for t in row.threats) or "none declared, none run"
        cells.append(
            [
                Cell("rank", str(i), i),
                Cell("protector", row.label, row.label, row.info.description, numeric=False),
                Cell("promise", row.promise, row.promise, numeric=False),
                _figure_cell("worst", row.worst, row.worst_by),
                *(_figure_cell(f"attacker:{t}", row.attackers.get(t, missing)) for t in attackers),
                *(_figure_cell(c.key, row.figures[c.key]) for c in FIGURE_COLUMNS),
                Cell("threats", threats, threats, numeric=False),
            ]
        )
    return columns, cells
