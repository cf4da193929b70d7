"""Crafting cost: seconds per veil and per crafting photo for each surrogate set.

The runner times crafting (it is the stage around protection, not an evaluation of photos)
and hands the figure over in the context; this measurement records it so that ``compare``
catches a gross slowdown. Evaluation time and the run's stage timings stay provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilbench.measurements.charts import number
from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)


@dataclass
class CraftTiming:
    """How long crafting took: in all, per veil and per crafting photo (seconds)."""

    total: float
    per_veil: float
    per_image: float
    veils: int


STAGES = (
    ("prepare_s", "prepare data"),
    ("clean_embedding_s", "clean embeddings"),
    ("total_s", "whole run"),
)


class CraftCost(Measurement):
    name = "cost"
    title = "Cost"
    description = "crafting seconds per veil and per photo (the runner times the stage)"
    needs = ("timing",)
    record = CraftTiming
    metrics = {"time": Metric("time", "lower", "seconds to craft one veil", relative=True)}
    nav = "Cost"
    template = "_cost.html"
    order = 95

    def evaluate(self, ctx: Context) -> CraftTiming | None:
        if ctx.craft_s is None:
            return None
        veils = len(ctx.data.probes)
        return CraftTiming(
            total=ctx.craft_s,
            per_veil=ctx.craft_s / max(1, veils),
            per_image=ctx.craft_s / max(1, ctx.crafted_images),
            veils=veils,
        )

    def values(self, record: CraftTiming, where: Where) -> list[MetricValue]:
        return [MetricValue(f"time/{where.key}/per_veil", self.metrics["time"], record.per_veil)]

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        rows = []
        for w in sets:
            t = w.records.get(self.name)
            rows.append(
                {
                    "surrogate": w.key,
                    **{
                        k: number(getattr(t, k)) if t else None
                        for k in ("total", "per_veil", "per_image")
                    },
                    "veils": t.veils if t else None,
                    "evaluate": number(w.evaluate_s),
                }
            )
        env = run.environment
        return {
            "rows": rows,
            "stages": [
                (label, number(run.timings.get(key))) for key, label in STAGES if key in run.timings
            ],
            "machine": {k: env.get(k) for k in ("device", "cpu_count", "torch_threads")},
            "device_resolved": run.config.get("device_resolved"),
        }

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        return old.get("craft_timing")
