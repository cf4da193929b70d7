"""Tolerances and the regression rule: how much worse a metric family may get.

Time is relative (3.0 = four times as slow) and loose by default: CI machines are shared and
noisy, so only a gross slowdown fails; pass ``--tolerance time=0.2`` on a quiet, dedicated
machine. A family with no default here (a plugin measurement's) has tolerance 0 unless given.
"""

from __future__ import annotations

from collections.abc import Iterable

from veilbench.errors import ConfigError
from veilbench.measurements.contract import Measurement, MetricValue

DEFAULT_TOLERANCE: dict[str, float] = {
    "msr": 0.02,
    "rank1": 0.02,
    "ssim": 0.01,
    "lpips": 0.02,
    "psnr": 0.5,
    "recovery_ssim": 0.01,
    "recovery_lpips": 0.02,
    "recovery_psnr": 0.5,
    "impersonation": 0.02,
    "reid": 0.02,
    "tar": 0.02,
    "time": 3.0,
    "convergence": 0.0,
    "face_detected": 0.05,
    "landmark_error": 0.05,
}


def families(measurements: Iterable[Measurement]) -> list[str]:
    """Every tolerance family the measurements' metrics use, defaults' first."""
    found = list(DEFAULT_TOLERANCE)
    for m in measurements:
        found += [k.family for k in m.metrics.values() if k.family not in found]
    return found


def parse_tolerance(text: str, known: Iterable[str] | None = None) -> dict[str, float]:
    """``msr=0.02,ssim=0.01`` -> tolerance per family; families not named keep their defaults."""
    known = list(known) if known is not None else _registered_families()
    tol = dict(DEFAULT_TOLERANCE)
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = item.partition("=")
        if key not in known:
            raise ConfigError(f"unknown tolerance {key!r}; known: {', '.join(known)}")
        try:
            tol[key] = float(value)
        except ValueError:
            raise ConfigError(f"tolerance {item!r} is not key=number") from None
        if not tol[key] >= 0:
            raise ConfigError(f"tolerance {item!r} must be a number >= 0")
    return tol


def _registered_families() -> list[str]:
    from veilbench.measurements import registered

    return families(registered().values())


def check(base: float | None, new: MetricValue | None, tolerance: float) -> str:
    """The regression rule: worse (in the metric's direction) beyond ``tolerance`` fails.

    A metric present in the baseline and gone from the new run is ``missing`` (a check that
    silently stops measuring something must not pass); one only in the new run is ``new``.
    """
    if base is None:
        return "new"
    if new is None or new.value is None:
        return "missing"
    gain = new.gain(base)
    return "REGRESSION" if gain < -tolerance else ("better" if gain > tolerance else "ok")
