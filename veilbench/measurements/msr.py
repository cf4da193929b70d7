"""The MSR matrix: for every surrogate set and target, how many protected photos still match.

MSR (matching success rate) is the share of protected photos whose top-1 gallery identity is
the one the clean photo got; white-box (the target crafted the photos) it is the service's
utility, black-box an attacker's success. Each cell keeps per-identity rates, so averages
cannot hide the person a protection fails (see ``per_identity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilbench.measurements import SUBSETS
from veilbench.measurements.charts import heat_style
from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)
from veilbench.measurements.records import Rate, legacy_rate, rate_value

SUBSET_CAPTIONS = {  # the results' subsets, described for readers
    "craft": "crafting photos (the veil was optimised on these)",
    "held_out": "held-out photos of the same people (never seen while crafting)",
}


@dataclass
class MsrCell:
    """One surrogate set's protected photos, matched by one target model (1:N, top-1)."""

    msr: Rate  # share of protected photos answered like their clean version
    rank1_protected: Rate  # share of protected photos answered with the right person
    rank1_clean: Rate  # the same for the clean photos (the target's own accuracy)
    n: int


MsrTable = dict[str, dict[str, MsrCell]]  # target -> subset -> cell


def unconverged(where: Where) -> list[str]:
    """Identities of this set whose veil missed its white-box criteria (convergence record)."""
    veils = where.records.get("convergence") or {}
    return sorted(k for k, c in veils.items() if getattr(c, "converged", None) is False)


class MsrMatrix(Measurement):
    name = "msr"
    title = "Matching success rate: surrogate × target"
    description = "white-box and black-box MSR and rank-1 of protected photos, per target"
    needs = ("protected", "gallery")
    record = MsrTable
    metrics = {
        "msr_white": Metric("msr", "higher", "white-box MSR: the service's model still matches"),
        "msr_black": Metric("msr", "lower", "black-box MSR: an attacker's model still matches"),
        "rank1_white": Metric("rank1", "higher", "white-box rank-1 of protected photos"),
        "rank1_black": Metric("rank1", "lower", "black-box rank-1 of protected photos"),
    }
    nav = "MSR matrix"
    template = "_msr.html"
    order = 10

    def evaluate(self, ctx: Context) -> MsrTable:
        from veilbench.evaluation.protected import evaluate_msr_parallel

        return evaluate_msr_parallel(ctx.targets, ctx.data, ctx.protected, ctx.executor)

    def values(self, record: MsrTable, where: Where) -> list[MetricValue]:
        out = []
        for target, cells in record.items():
            side = "white" if where.white_box(target) else "black"
            for subset, cell in cells.items():
                at = f"{where.key}->{target}/{subset}"
                out.append(MetricValue.rated(f"msr/{at}", self.metrics[f"msr_{side}"], cell.msr))
                out.append(
                    MetricValue.rated(
                        f"rank1/{at}", self.metrics[f"rank1_{side}"], cell.rank1_protected
                    )
                )
        return out

    def summary(self, sets: list[Where], run: RunView) -> list[str]:
        lines = ["MSR (rows: surrogate; columns: target, * = white-box; held-out photos)"]
        for w in sets:
            table = w.records.get(self.name) or {}
            cells = "  ".join(
                f"{t}{'*' if w.white_box(t) else ''}={num(c['held_out'].msr.value)}"
                for t, c in table.items()
                if "held_out" in c
            )
            missed = unconverged(w)
            veils = len(w.records.get("convergence") or {})
            # A white-box figure from unconverged veils is the optimiser's, not a privacy result.
            flag = f"  ({len(missed)}/{veils} veils UNCONVERGED)" if missed else ""
            lines.append(f"  {w.key:<24} {cells}{flag}")
        return lines

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:

        tables = []
        clean = run.records.get("clean") or {}
        for subset in SUBSETS:
            rows = []
            for w in sets:
                table = w.records.get(self.name) or {}
                cells = []
                for t in run.targets:
                    cell = table.get(t, {}).get(subset)
                    value = rate_value(cell.msr) if cell else None
                    cells.append(
                        {
                            "target": t,
                            "value": value,
                            "style": heat_style(value),
                            "white_box": w.white_box(t),
                            # a white-box figure from veils that never reached their criteria
                            "unconverged": len(unconverged(w)) if w.white_box(t) else 0,
                            "rank1": rate_value(cell.rank1_protected) if cell else None,
                            "rate": cell.msr if cell else None,
                            "n": cell.n if cell else None,
                        }
                    )
                if table:
                    rows.append({"surrogate": w.key, "cells": cells})
            footer = [
                {"target": t, "value": rate_value(clean.get(t, {}).get(subset))}
                for t in run.targets
            ]
            tables.append(
                {
                    "subset": subset,
                    "caption": SUBSET_CAPTIONS[subset],
                    "rows": rows,
                    "clean": footer,
                }
            )
        return {"tables": tables, "targets": run.targets}

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        people = len((doc.get("split") or {}).get("probes") or []) or None
        table = old.get("msr")
        if not table:
            return None
        return {
            target: {
                subset: {
                    **cell,
                    **{
                        k: legacy_rate(cell.get(k), cell.get("n"), people)
                        for k in ("msr", "rank1_protected", "rank1_clean")
                    },
                }
                for subset, cell in cells.items()
            }
            for target, cells in table.items()
        }


def num(value: float | None) -> str:
    """A number as the console summary prints it."""
    return "n/a" if value is None or value != value else f"{value:.2f}"
