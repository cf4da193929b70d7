"""Robustness: MSR per target along each attack's sweep, on protected and on clean photos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilbench.measurements.charts import PALETTE, Series, line_chart, number
from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)
from veilbench.measurements.records import Rate, legacy_rate, rate_value


@dataclass
class RobustnessCurve:
    """MSR per target along one attack's sweep, on protected photos and on clean ones."""

    parameter: str
    strengths: list[float]
    protected: dict[str, list[Rate]]  # target -> MSR per strength
    clean: dict[str, list[Rate]]  # the same attack on clean photos (the baseline)


Curves = dict[str, RobustnessCurve]  # attack -> curve

_LINE_KEY = (
    Series("veiled photos", (), "#555555"),
    Series("clean photos, same attack", (), "#555555", dashed=True),
)


class Robustness(Measurement):
    name = "robustness"
    title = "Robustness"
    description = "MSR under each --attacks sweep, protected photos beside clean ones"
    needs = ("protected", "gallery", "attacks")
    record = Curves
    metrics = {
        "msr_white": Metric("msr", "higher", "white-box MSR of attacked protected photos"),
        "msr_black": Metric("msr", "lower", "black-box MSR of attacked protected photos"),
    }
    nav = "Robustness"
    template = "_robustness.html"
    order = 50

    def applies(self, config: Any) -> bool:
        return bool(config.attacks)

    def evaluate(self, ctx: Context) -> Curves | None:
        from veilbench.evaluation.protected import evaluate_robustness_parallel

        if not ctx.attacks:
            return None
        config = ctx.config
        return evaluate_robustness_parallel(
            ctx.targets,
            ctx.data,
            ctx.protected,
            ctx.attacks,
            sweeps=config.attack_sweeps,
            subset=config.robustness_on,
            max_images=config.max_attack_images,
            executor=ctx.executor,
        )

    def values(self, record: Curves, where: Where) -> list[MetricValue]:
        out = []
        for attack, curve in record.items():
            for target, rates in curve.protected.items():
                side = "white" if where.white_box(target) else "black"
                for strength, rate in zip(curve.strengths, rates, strict=False):
                    mid = f"robustness/{where.key}/{attack}@{strength:g}->{target}"
                    out.append(MetricValue.rated(mid, self.metrics[f"msr_{side}"], rate))
        return out

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        charts = [
            _chart(w, attack, curve, run.targets)
            for w in sets
            for attack, curve in (w.records.get(self.name) or {}).items()
        ]
        return {"charts": charts, "robustness_on": run.config.get("robustness_on")}

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        curves = old.get("robustness")
        if not curves:
            return None
        return {
            attack: {
                **curve,
                **{
                    side: {
                        t: [legacy_rate(v) for v in values]
                        for t, values in (curve.get(side) or {}).items()
                    }
                    for side in ("protected", "clean")
                },
            }
            for attack, curve in curves.items()
        }


def _chart(w: Where, attack: str, curves: RobustnessCurve, targets: list[str]) -> dict[str, Any]:
    """One SVG per (surrogate, attack): MSR per target (solid) and the clean baseline (dashed)."""
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
            raw = curve[t] if isinstance(curve[t], list) else []
            values = [rate_value(raw[j]) if j < len(raw) else None for j in keep]
            label = f"{t}{' (white-box)' if w.white_box(t) else ''}"
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
            title=f"MSR under {attack} vs {parameter}, veils crafted on {w.key}",
            key=_LINE_KEY,
            data={"surrogate": w.key, "attack": attack},
        )
        if xs and series
        else None
    )
    return {
        "surrogate": w.key,
        "attack": attack,
        "parameter": parameter,
        "svg": svg,
        "strengths": xs,
        "rows": rows,
    }
