"""Regression checks: compare two results files metric by metric, with tolerances."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veilbench.errors import ConfigError

#: metric family -> True when higher is better.
HIGHER_IS_BETTER = {
    "msr": True,
    "rank1": True,
    "ssim": False,
    "lpips": True,
    "recovery_ssim": True,
    "recovery_lpips": False,
}
DEFAULT_TOLERANCE = {
    "msr": 0.02,
    "rank1": 0.02,
    "ssim": 0.01,
    "lpips": 0.02,
    "recovery_ssim": 0.01,
    "recovery_lpips": 0.02,
}


def parse_tolerance(text: str) -> dict[str, float]:
    """``msr=0.02,ssim=0.01`` -> dict; families not named keep their defaults."""
    tol = dict(DEFAULT_TOLERANCE)
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = item.partition("=")
        if key not in HIGHER_IS_BETTER:
            raise ConfigError(f"unknown tolerance {key!r}; known: {', '.join(HIGHER_IS_BETTER)}")
        try:
            tol[key] = float(value)
        except ValueError:
            raise ConfigError(f"tolerance {item!r} is not key=number") from None
    return tol


def flatten(doc: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """``metric id -> (family, value)`` for every comparable number in a results document."""
    res = doc.get("results", {})
    out: dict[str, tuple[str, float]] = {}
    for surrogate, row in res.get("msr", {}).items():
        for target, subsets in row.items():
            for subset, v in subsets.items():
                out[f"msr/{surrogate}->{target}/{subset}"] = ("msr", v["msr"])
                out[f"rank1/{surrogate}->{target}/{subset}"] = ("rank1", v["rank1_protected"])
    for surrogate, m in res.get("image_metrics", {}).items():
        out[f"ssim/{surrogate}/protected"] = ("ssim", m["protected"]["ssim"])
        out[f"lpips/{surrogate}/protected"] = ("lpips", m["protected"]["lpips"])
        out[f"recovery_ssim/{surrogate}"] = ("recovery_ssim", m["recovered"]["ssim"])
        out[f"recovery_lpips/{surrogate}"] = ("recovery_lpips", m["recovered"]["lpips"])
    return {k: v for k, v in out.items() if v[1] is not None}  # null = NaN: not comparable


@dataclass
class Row:
    metric: str
    base: float | None
    new: float | None
    tolerance: float
    status: str  # ok | better | REGRESSION | missing | new


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status in ("REGRESSION", "missing")]

    def table(self) -> str:
        width = max([len(r.metric) for r in self.rows] + [6])
        lines = [f"{'metric':<{width}}  {'base':>8}  {'new':>8}  {'delta':>8}  status"]
        for r in self.rows:
            delta = (r.new - r.base) if r.new is not None and r.base is not None else None
            lines.append(
                f"{r.metric:<{width}}  {_fmt(r.base):>8}  {_fmt(r.new):>8}  "
                f"{_fmt(delta, signed=True):>8}  {r.status}"
            )
        return "\n".join(lines)

    def markdown(self) -> str:
        verdict = (
            f"**{len(self.regressions)} regression(s)**"
            if self.regressions
            else "**no regressions**"
        )
        lines = [
            f"### veilbench compare: {verdict}",
            "",
            "| metric | base | new | delta | status |",
            "|---|---:|---:|---:|---|",
        ]
        for r in self.rows:
            delta = (r.new - r.base) if r.new is not None and r.base is not None else None
            lines.append(
                f"| `{r.metric}` | {_fmt(r.base)} | {_fmt(r.new)} | "
                f"{_fmt(delta, signed=True)} | {r.status} |"
            )
        return "\n".join(lines) + "\n"


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def compare(base: dict, new: dict, tolerance: dict[str, float]) -> Comparison:
    """Every metric of ``base`` against ``new``; worse by more than its tolerance regresses."""
    a, b = flatten(base), flatten(new)
    result = Comparison()
    for metric in sorted(set(a) | set(b)):
        family = (a.get(metric) or b.get(metric))[0]
        va = a[metric][1] if metric in a else None
        vb = b[metric][1] if metric in b else None
        tol = tolerance.get(family, 0.0)
        if va is None:
            status = "new"
        elif vb is None:
            status = "missing"
        else:
            gain = (vb - va) if HIGHER_IS_BETTER[family] else (va - vb)
            status = "REGRESSION" if gain < -tol else ("better" if gain > tol else "ok")
        result.rows.append(Row(metric, va, vb, tol, status))
    return result
