"""Regression checks: two results documents compared metric by metric, each in its direction.

The directions and tolerance families come from the registered measurements (each declares
its metrics): a black-box MSR that goes UP is an attacker recognising more protected photos, a
privacy regression, even though the number grew. Tolerances and the rule itself are in
:mod:`veilbench.compare.tolerance`.

Two runs of one configuration see the same photos, so a rate that moved beyond its tolerance is
then tested photo by photo (:func:`veilbench.stats.judge_changes`: McNemar's exact test, or the
identity bootstrap with enough people; Holm's correction over every rate tested): a move within
the noise is not flagged. A rate on too few people to test is flagged on the tolerance alone
when it got worse, so a white-box MSR falling from 1.0 to 0.5 on two people still fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from veilbench.compare.tolerance import DEFAULT_TOLERANCE, check, parse_tolerance
from veilbench.measurements.contract import Measurement, MetricValue
from veilbench.results import ResultsDocument
from veilbench.stats import MetricOutcomes, judge_changes

STATUSES = ("REGRESSION", "missing", "better", "new", "ok")


@dataclass
class Row:
    metric: str
    family: str
    direction: str  # higher | lower: which way is better
    base: float | None
    new: float | None
    tolerance: float
    status: str  # REGRESSION | missing | better | new | ok
    #: Why a change beyond the tolerance was (or was not) flagged: the paired test's verdict.
    note: str = ""

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.new is None else self.new - self.base


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status in ("REGRESSION", "missing")]

    @property
    def improvements(self) -> list[Row]:
        return [r for r in self.rows if r.status == "better"]

    def verdict(self) -> str:
        worse, better = len(self.regressions), len(self.improvements)
        head = f"{worse} regression(s) beyond tolerance" if worse else "no regressions"
        return f"{head}; {better} better; {len(self.rows) - worse - better} unchanged or new"

    def _shown(self, show_all: bool) -> list[Row]:
        rows = self.rows if show_all else [r for r in self.rows if r.status != "ok"]
        return sorted(rows, key=lambda r: (STATUSES.index(r.status), r.metric))

    def table(self, show_all: bool = False) -> str:
        rows = self._shown(show_all)
        width = max([len(r.metric) for r in rows] + [6])
        lines = [
            f"{'metric':<{width}}  {'better':>6}  {'base':>8}  {'new':>8}  {'delta':>8}  status"
        ]
        for r in rows:
            lines.append(
                f"{r.metric:<{width}}  {r.direction:>6}  {_fmt(r.base):>8}  {_fmt(r.new):>8}  "
                f"{_fmt(r.delta, signed=True):>8}  {r.status}" + (f"  ({r.note})" if r.note else "")
            )
        if not rows:
            lines.append(f"(all {len(self.rows)} metrics within tolerance)")
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [
            f"### veilbench compare: **{self.verdict()}**",
            "",
            "| metric | better | base | new | delta | status | significance |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for r in self._shown(show_all=False):
            lines.append(
                f"| `{r.metric}` | {r.direction} | {_fmt(r.base)} | {_fmt(r.new)} | "
                f"{_fmt(r.delta, signed=True)} | {r.status} | {r.note} |"
            )
        return "\n".join(lines) + "\n"


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def compare(
    base: ResultsDocument,
    new: ResultsDocument,
    tolerance: dict[str, float] | None = None,
    measurements: dict[str, Measurement] | None = None,
) -> Comparison:
    """Every metric of ``base`` against ``new``, by the rule of :func:`tolerance.check`."""
    tolerance = {**DEFAULT_TOLERANCE, **(tolerance or {})}
    a = {m.id: m for m in base.metrics(measurements)}
    b = {m.id: m for m in new.metrics(measurements)}
    result = Comparison()
    for metric_id in sorted(set(a) | set(b)):
        ref = a.get(metric_id) or b[metric_id]
        family = ref.metric.family
        tol = tolerance.get(family, 0.0)
        va = a[metric_id].value if metric_id in a else None
        vb = b[metric_id].value if metric_id in b else None
        status = check(va, b.get(metric_id), tol)
        result.rows.append(Row(metric_id, family, ref.metric.direction, va, vb, tol, status))
    _judge_paired(result.rows, a, b)
    return result


def _paired(base: MetricValue, new: MetricValue) -> tuple[list[bool], list[bool], list[str]]:
    """Both runs' per-photo outcomes in one photo order, or empty when they cannot be paired."""
    x = base.rate.outcomes if base.rate else None
    y = new.rate.outcomes if new.rate else None
    if not x or not y or set(x) != set(y) or any(len(x[i]) != len(y[i]) for i in x):
        return [], [], []
    people = list(x)
    before = [c == "1" for i in people for c in x[i]]
    after = [c == "1" for i in people for c in y[i]]
    return before, after, [i for i in people for _ in x[i]]


def _judge_paired(rows: list[Row], a: dict[str, MetricValue], b: dict[str, MetricValue]) -> None:
    """Re-judge the rates that moved beyond their tolerance with a paired test (Holm over all
    of them); a move within the noise becomes ``ok``, with the test's verdict as its note."""
    moved = [r for r in rows if r.status in ("REGRESSION", "better")]
    tested: dict[str, Row] = {}
    outcomes = []
    for row in moved:
        before, after, people = _paired(a[row.metric], b[row.metric])
        if not people:
            row.note = "not paired (no per-photo outcomes): tolerance alone"
            continue
        tested[row.metric] = row
        outcomes.append(
            MetricOutcomes(
                row.metric, before, after, people, row.tolerance, row.direction == "higher"
            )
        )
    for verdict in judge_changes(outcomes):
        row = tested[verdict.name]
        row.note = verdict.reason
        if not verdict.flagged:
            row.status = "ok"


__all__ = ["Comparison", "Row", "compare", "parse_tolerance"]
