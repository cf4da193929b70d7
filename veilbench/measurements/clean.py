"""Clean rank-1: each target's own accuracy on the run's unprotected probe photos."""

from __future__ import annotations

from typing import Any

from veilbench.measurements.contract import Context, Measurement, Metric, MetricValue, Where
from veilbench.measurements.records import Rate, legacy_rate


class CleanRank1(Measurement):
    """target -> subset -> rank-1 of the clean probe photos (the yardstick of every MSR)."""

    name = "clean"
    title = "Clean rank-1"
    description = "each target's rank-1 on the clean probe photos (its accuracy on this split)"
    needs = ("gallery",)
    scope = "run"
    record = dict[str, dict[str, Rate]]
    metrics = {"rank1_clean": Metric("rank1", "higher", "a target's rank-1 on clean photos")}
    order = 0

    def evaluate(self, ctx: Context) -> dict[str, dict[str, Rate]]:
        from veilbench.evaluation.protected import clean_rank1

        return clean_rank1(ctx.targets, ctx.data)

    def values(self, record: dict[str, dict[str, Rate]], where: Where) -> list[MetricValue]:
        return [
            MetricValue.rated(f"clean/{target}/{subset}", self.metrics["rank1_clean"], rate)
            for target, cells in record.items()
            for subset, rate in cells.items()
        ]

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        people = len((doc.get("split") or {}).get("probes") or []) or None
        clean = (doc.get("results") or {}).get("clean") or {}
        return {
            t: {s: legacy_rate(v, 0, people) for s, v in cells.items()}
            for t, cells in clean.items()
        }
