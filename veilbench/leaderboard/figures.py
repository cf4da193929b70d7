"""A leaderboard cell: its number (for sorting), its text (shared by the HTML and the Markdown
table, so the two can never disagree) and what it rests on (shown on hover)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from veilbench.measurements.records import Rate, mean, rate_value
from veilbench.report import fmt, with_interval

#: A 95% interval wider than this says little: the page calls such a figure a small sample.
WIDE = 0.3
#: Decimals of a rate (and of every other share) in both tables.
RATE_DIGITS = 2


@dataclass
class Figure:
    """One table cell. ``value`` None: nothing measured (shown "n/a", sorted last)."""

    value: float | None = None
    text: str = "n/a"
    title: str = ""  # hover: interval method, photos / people, where the number comes from
    wide: bool = False  # its 95% interval is wider than WIDE

    @classmethod
    def missing(cls, why: str) -> Figure:
        return cls(title=why)


def counts(photos: int | None, people: int | None) -> str:
    """ "10 photos / 2 people" (people left out when the rate did not record them)."""
    text = f"{photos} photo{'' if photos == 1 else 's'}"
    if people is not None:
        text += f" / {people} {'person' if people == 1 else 'people'}"
    return text


def _interval(low: float, high: float) -> str:
    return f" [{fmt(low, RATE_DIGITS)}, {fmt(high, RATE_DIGITS)}]"


def rate_figure(rate: Rate | None, where: str = "") -> Figure:
    """A rate as "value [low, high]", its counts and interval method on hover."""
    value = rate_value(rate)
    if rate is None or value is None:
        return Figure.missing(where or "not measured")
    text, notes, wide = fmt(value, RATE_DIGITS), [where] if where else [], False
    iv = rate.interval
    if iv is not None and iv.low is not None and iv.high is not None:
        text += _interval(iv.low, iv.high)
        wide = iv.high - iv.low > WIDE
        notes.append(f"95% interval ({iv.method or 'method not recorded'})")
    notes.append(counts(rate.photos, rate.identities))
    return Figure(value, text, "; ".join(notes), wide)


def mean_figure(rates: Sequence[Rate | None], where: str = "") -> Figure:
    """The mean of several rates; its interval is the span of theirs (as the report's
    headline shows a mean), since the cells share photos and cannot be pooled."""
    known = [r for r in rates if rate_value(r) is not None]
    if len(known) <= 1:
        return rate_figure(known[0] if known else None, where)
    value = mean(rate_value(r) for r in known)
    if value is None:
        return Figure.missing(where)
    figure = with_interval({"rates": known})
    text, notes, wide = fmt(value, RATE_DIGITS), [where, f"mean of {len(known)} cells"], False
    if "interval" in figure:
        low, high = figure["interval"]
        text += _interval(low, high)
        wide = high - low > WIDE
        notes += [figure["interval_note"], figure["counts"]]
    return Figure(value, text, "; ".join(n for n in notes if n), wide)


def number_figure(value: float | None, digits: int, where: str = "", unit: str = "") -> Figure:
    """A plain number (image quality, seconds): no interval to show."""
    v = None if value is None or value != value else float(value)
    if v is None:
        return Figure.missing(where or "not measured")
    return Figure(v, fmt(v, digits) + unit, where)


def seconds(value: float | None, where: str = "") -> Figure:
    """Seconds, with more decimals for the fast protectors (a blur takes milliseconds)."""
    digits = 3 if value is not None and value < 10 else 1
    return number_figure(value, digits, where, " s")
