"""Impersonation: person p's veil on OTHER people's photos, and how often a target then
answers "p". A high white-box rate makes a leaked veil a token for its owner."""

from __future__ import annotations

from typing import Any

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

Rates = dict[str, Rate]  # target -> rate


class Impersonation(Measurement):
    name = "impersonation"
    title = "Impersonation: a leaked veil is a token for its owner"
    description = "a veil applied to others' photos: the share each target answers as its owner"
    needs = ("veils", "gallery")
    record = Rates
    metrics = {
        "impersonation": Metric(
            "impersonation", "lower", "a veil on others' photos answers its owner"
        )
    }
    nav = "Impersonation"
    template = "_impersonation.html"
    order = 60

    def evaluate(self, ctx: Context) -> Rates | None:
        from veilbench.evaluation.protected import evaluate_impersonation_parallel

        rates = evaluate_impersonation_parallel(
            ctx.targets, ctx.data, ctx.protected, ctx.protector, ctx.executor
        )
        return rates or None  # per-image protectors and a single person: not measurable

    def values(self, record: Rates, where: Where) -> list[MetricValue]:
        metric = self.metrics["impersonation"]
        return [
            MetricValue.rated(f"impersonation/{where.key}->{t}", metric, rate)
            for t, rate in record.items()
        ]

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        rows = []
        for w in sets:
            rates = w.records.get(self.name) or {}
            if not rates:
                continue
            cells = []
            for t in run.targets:
                value = rate_value(rates.get(t))
                cells.append(
                    {
                        "target": t,
                        "value": value,
                        "white_box": w.white_box(t),
                        "style": heat_style(value),
                    }
                )
            rows.append({"surrogate": w.key, "cells": cells})
        return {"targets": run.targets, "rows": rows}

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        rates = old.get("impersonation")
        return {t: legacy_rate(v) for t, v in rates.items()} if rates else None
