"""Verification-based privacy: TAR and PSR at fixed FARs, beside the 1:N MSR.

Papers and toolkits (TIP-IM, AMT-GAN, CLIP2Protect, FDeID) report 1:1 verification: is the
protected photo still *accepted as its person* at a threshold set for a false-accept rate? For
each target the threshold is calibrated on clean impostor comparisons of the run's gallery,
made exactly as the genuine ones are (a photo against the centroid of a person's clean
enrolment embeddings; see :mod:`veilbench.evaluation.acceptance`). TAR on a white-box target is
the service's utility; on a black-box target it is privacy lost, and PSR = 1 - TAR is the
protection success rate. Every cell carries the clean TAR of the same photos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
from veilbench.measurements.records import Rate, mean, rate_value


@dataclass
class OperatingPoint:
    """One FAR's threshold for one target, and the impostor comparisons it rests on."""

    far: float  # the FAR asked for
    threshold: float | None  # None: too few impostor comparisons to estimate this FAR
    impostors: int  # clean impostor comparisons the threshold was set on
    accepted: int  # of those, accepted at the threshold (achieved FAR = accepted / impostors)
    note: str = ""


@dataclass
class TarPoint:
    """At one FAR: the share of protected photos still accepted, and of the same photos clean."""

    tar: Rate  # protected photos accepted as their person (PSR = 1 - TAR)
    clean_tar: Rate  # the same photos unprotected: the target's own verification rate


@dataclass
class TarCell:
    """One target's verdicts on one subset of a surrogate set's protected photos."""

    points: dict[str, TarPoint]  # far label ("1e-3") -> rates
    n: int


@dataclass
class Verification:
    """Thresholds per target and FAR, and TAR / clean TAR per target and subset."""

    thresholds: dict[str, dict[str, OperatingPoint]] = field(default_factory=dict)
    cells: dict[str, dict[str, TarCell]] = field(default_factory=dict)  # target -> subset


def psr(rate: Rate | None) -> float | None:
    """Protection success rate: the share NOT accepted (1 - TAR)."""
    value = rate_value(rate)
    return None if value is None else 1.0 - value


class VerificationMeasurement(Measurement):
    name = "verification"
    title = "Verification: TAR and PSR at fixed FAR"
    description = "1:1 TAR / PSR of protected photos at FAR 1e-2 and 1e-3, beside clean TAR"
    needs = ("protected", "gallery")
    record = Verification
    metrics = {
        "tar_white": Metric(
            "tar", "higher", "white-box TAR: the service still verifies the person"
        ),
        "tar_black": Metric(
            "tar", "lower", "black-box TAR: an attacker's model still verifies (PSR = 1 - TAR)"
        ),
    }
    nav = "TAR / PSR"
    template = "_verification.html"
    order = 12

    def evaluate(self, ctx: Context) -> Verification:
        from veilbench.evaluation.acceptance import evaluate_verification

        return evaluate_verification(ctx.targets, ctx.data, ctx.protected)

    def values(self, record: Verification, where: Where) -> list[MetricValue]:
        out = []
        for target, cells in record.cells.items():
            side = "white" if where.white_box(target) else "black"
            for subset, cell in cells.items():
                for far, point in cell.points.items():
                    out.append(
                        MetricValue.rated(
                            f"tar@{far}/{where.key}->{target}/{subset}",
                            self.metrics[f"tar_{side}"],
                            point.tar,
                        )
                    )
        return out

    def summary(self, sets: list[Where], run: RunView) -> list[str]:
        rows = []
        for w in sets:
            record = w.records.get(self.name)
            if not record:
                continue
            cells = []
            for t, c in record.cells.items():
                points = c["held_out"].points if "held_out" in c else {}
                shown = " / ".join(
                    f"{_num(p.tar.value)} ({_num(p.clean_tar.value)})"
                    for _, p in sorted(points.items(), reverse=True)
                )
                if shown:
                    cells.append(f"{t}{'*' if w.white_box(t) else ''}={shown}")
            rows.append(
                f"  {w.key:<24} " + ("  ".join(cells) or "no FAR estimable: too few impostors")
            )
        if not rows:  # not measured: no heading without rows
            return []
        heading = (
            "TAR at FAR 1e-2 / 1e-3 (held-out; * = white-box; PSR = 1 - TAR; clean in brackets)"
        )
        return [heading, *rows]

    def headline(self, sets: list[Where], run: RunView) -> list[dict[str, Any]]:
        black = [
            point.tar
            for w in sets
            for t, c in ((w.records.get(self.name) or Verification()).cells.items())
            if not w.white_box(t)
            and (point := (c.get("held_out") and c["held_out"].points.get("1e-3")))
        ]
        if not black:
            return []
        return [
            {
                "label": "Black-box PSR @ FAR 1e-3, held-out",
                "value": mean(psr(r) for r in black),
                "pairs": sum(1 for w in sets if w.records.get(self.name)),
                "rates": [_flip(r) for r in black],
                "note": "share of protected photos an attacker's model no longer verifies as the "
                "person (higher = privacy)",
            }
        ]

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        rows, thresholds = [], {}
        for w in sets:
            record = w.records.get(self.name)
            if not record:
                continue
            thresholds.update(record.thresholds)
            for target, cells in record.cells.items():
                for subset in SUBSETS:
                    cell = cells.get(subset)
                    if cell is None:
                        continue
                    points = []
                    for far, p in sorted(cell.points.items(), reverse=True):
                        value = rate_value(p.tar)
                        points.append(
                            {
                                "far": far,
                                "tar": p.tar,
                                "psr": psr(p.tar),
                                "clean": p.clean_tar,
                                "style": heat_style(value),
                            }
                        )
                    rows.append(
                        {
                            "surrogate": w.key,
                            "target": target,
                            "subset": subset,
                            "white_box": w.white_box(target),
                            "n": cell.n,
                            "points": points,
                        }
                    )
        fars = sorted({p["far"] for r in rows for p in r["points"]}, reverse=True)
        return {
            "rows": rows,
            "fars": fars,
            "thresholds": [
                {"target": t, "far": far, "point": p}
                for t, points in thresholds.items()
                for far, p in sorted(points.items(), reverse=True)
            ],
        }


def _flip(rate: Rate) -> Rate:
    """A TAR's rate read as PSR (1 - TAR), its interval mirrored."""
    from dataclasses import replace

    iv = rate.interval
    value = rate_value(rate)
    flipped = None
    if iv is not None and iv.low is not None and iv.high is not None:
        flipped = replace(iv, low=1.0 - iv.high, high=1.0 - iv.low)
    return replace(
        rate, value=None if value is None else 1.0 - value, interval=flipped, outcomes=None
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.2f}"
