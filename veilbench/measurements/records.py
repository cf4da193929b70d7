"""Records shared by several measurements: a rate with what it rests on, and image quality.

Every rate a measurement reports is a :class:`Rate`: the share, the photos and identities it
was computed on, room for a confidence interval, and (where a measurement keeps them) the rate
of each identity. One type for all rates means interval estimates and per-identity breakdowns
fill one record instead of reopening every measurement's. No torch or numpy at import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Interval:
    """A confidence interval of a rate, and how it was computed."""

    low: float | None
    high: float | None
    level: float = 0.95
    method: str = ""  # "bootstrap-identity" or "wilson-identity" (veilbench.stats.rate_interval)

    @property
    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low


@dataclass
class Rate:
    """A share of photos with its counts: "0.67" from 6 photos is not "0.67" from 600."""

    value: float | None  # None: nothing to count (written as null)
    photos: int  # how many photos (or comparisons) the share is over
    identities: int | None = None  # how many people those photos show (None: not recorded)
    interval: Interval | None = None  # filled by interval estimation; None: not estimated
    per_identity: dict[str, float | None] | None = None  # identity -> its own rate, when kept
    #: identity -> its photos' outcomes in photo order ("1" = hit): what lets ``compare`` pair
    #: two runs photo by photo (McNemar / paired bootstrap) instead of comparing two shares.
    outcomes: dict[str, str] | None = None


def rate_of(
    hits: Any, identities: Sequence[str] | None = None, *, per_identity: bool = False
) -> Rate:
    """The :class:`Rate` of boolean ``hits`` (one per photo), with the photos' ``identities``.

    ``value`` is ``hits.mean()`` exactly (NaN, written null, when there are no photos). Given
    the identities, the rate also carries its 95% interval (:func:`veilbench.stats.rate_interval`:
    identities, not photos, are the independent unit) and its per-photo outcomes.
    """
    import numpy as np

    hits = np.asarray(hits, dtype=bool)
    value = float(hits.mean()) if len(hits) else float("nan")
    if identities is None:
        return Rate(value=value, photos=int(len(hits)))
    from veilbench.stats import rate_interval

    people = [str(i) for i in identities]
    who = np.asarray(people)
    mine = {i: hits[who == i] for i in dict.fromkeys(people)}
    interval = None
    if len(hits):
        iv = rate_interval(hits, people)
        interval = Interval(iv.low, iv.high, iv.level, iv.method)
    return Rate(
        value=value,
        photos=int(len(hits)),
        identities=len(mine),
        interval=interval,
        per_identity={i: float(h.mean()) for i, h in mine.items()} if per_identity else None,
        outcomes={i: "".join("1" if x else "0" for x in h) for i, h in mine.items()},
    )


def rate_value(rate: Rate | None) -> float | None:
    """The rate's value, None when the rate or its value is missing (NaN included)."""
    value = None if rate is None else rate.value
    return None if value is None or value != value else float(value)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the known, finite values; None when there are none."""
    known = [float(v) for v in values if v is not None and v == v and abs(v) != float("inf")]
    return sum(known) / len(known) if known else None


@dataclass
class ImageQuality:
    """Mean SSIM / LPIPS (AlexNet) / PSNR of ``n`` images against their originals."""

    ssim: float | None
    lpips: float | None
    psnr: float | None
    n: int


def legacy_rate(value: Any, photos: Any = 0, identities: Any = None) -> dict[str, Any]:
    """A rate as an older results file wrote it (a bare number) in today's layout."""
    if isinstance(value, dict):
        return value
    return {"value": value, "photos": int(photos or 0), "identities": identities}
