"""The privacy-utility frontier: one panel per promise, its Pareto front, as inline SVG.

y is always the worst-case re-identification rate (lower is better). x is what the promise
trades it for: a ``cloak`` promises a photo that looks unchanged, so x is LPIPS to the
original (lower is better); a ``concealment`` hides the face from people and may keep the
face recognisable to the service, so x is the service's white-box TAR, or MSR where TAR at
FAR 1e-3 is not estimable for every point (higher is better). A concealment that keeps
nothing for the service (utility ``none``) sits at x = 0 and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from markupsafe import Markup, escape

from veilbench.measurements.charts import nice_ticks, tick_label

if TYPE_CHECKING:
    from veilbench.leaderboard.rows import Row

Better = Literal["lower", "higher"]
PROMISE_ORDER = ("cloak", "concealment")


@dataclass
class Point:
    """One protector variant on a panel."""

    label: str
    x: float
    y: float
    note: str = ""  # e.g. "utility none: x = 0"
    demo: bool = False


@dataclass
class Panel:
    """One promise's chart: its points, their Pareto front, and who could not be placed."""

    promise: str
    x_label: str
    x_better: Better
    points: list[Point] = field(default_factory=list)
    front: list[Point] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # "name: why"
    notes: list[str] = field(default_factory=list)
    svg: Markup | None = None


def dominates(a: Point, b: Point, x_better: Better) -> bool:
    """``a`` is at least as good as ``b`` on both axes and better on one (y: lower)."""
    x_ok = a.x <= b.x if x_better == "lower" else a.x >= b.x
    x_strict = a.x < b.x if x_better == "lower" else a.x > b.x
    return x_ok and a.y <= b.y and (x_strict or a.y < b.y)


def pareto_front(points: Sequence[Point], x_better: Better) -> list[Point]:
    """The points no other point dominates (equal points all stay), ordered by x."""
    front = [p for p in points if not any(dominates(q, p, x_better) for q in points)]
    return sorted(front, key=lambda p: (p.x, p.y))


def _concealment_x(rows: Sequence[Row]) -> tuple[str, str]:
    """TAR at FAR 1e-3 when every service-utility row has it, else MSR (one axis, one metric)."""
    served = [r for r in rows if r.info.traits.utility == "white_box_tar"]
    if served and all(r.figures["service_tar"].value is not None for r in served):
        return "service_tar", "service's white-box TAR @ FAR 1e-3 (higher is better)"
    return "service_msr", "service's white-box MSR (higher is better)"


def panel(promise: str, rows: Sequence[Row]) -> Panel:
    """The panel of the rows that declare ``promise``."""
    if promise == "cloak":
        key, x_label, better = "lpips", "LPIPS to the original (lower is better)", "lower"
    else:
        key, x_label = _concealment_x(rows)
        better = "higher"
    out = Panel(promise, x_label, better)  # type: ignore[arg-type]
    for row in rows:
        y, note = row.worst.value, ""
        x = row.figures[key].value
        if promise != "cloak" and row.info.traits.utility != "white_box_tar":
            x, note = 0.0, f"utility {row.info.traits.utility}: nothing kept for the service, x = 0"
        if y is None or x is None:
            why = "no worst case (no attacker's model)" if y is None else f"no {key} measured"
            out.left_out.append(f"{row.label}: {why}")
            continue
        out.points.append(Point(row.label, x, y, note, row.info.demo))
        if note:
            out.notes.append(f"{row.label}: {note}")
    out.front = pareto_front(out.points, better)  # type: ignore[arg-type]
    out.svg = frontier_svg(out) if out.points else None
    return out


def panels(rows: Sequence[Row]) -> list[Panel]:
    """One panel per promise the rows declare (cloak first); a promise other than the two
    known ones (a plugin's) is drawn against the service's utility, like a concealment."""
    promises = sorted({r.promise for r in rows}, key=lambda p: (p not in PROMISE_ORDER, p))
    return [panel(p, [r for r in rows if r.promise == p]) for p in promises]


_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 560, 340, 56, 24, 16, 52


def _labels(placed: list[tuple[float, float, float]], x: float, y: float, width: float) -> float:
    """A label's baseline near (x, y) that overlaps none already placed (x, y, width)."""
    for dy in (-8, 14, -20, 26, -32, 38, -44, 50):
        top = y + dy
        if not any(abs(top - b) < 12 and x < a + w and a < x + width for a, b, w in placed):
            placed.append((x, top, width))
            return top
    placed.append((x, y - 8, width))
    return y - 8


def frontier_svg(p: Panel) -> Markup:
    """Axes, ticks, every point with a label and a hover title, the front as a line."""
    x_hi = max([1.0, *(q.x for q in p.points)])
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    bottom = _TOP + plot_h

    def px(x: float) -> float:
        return _LEFT + x / x_hi * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - min(max(y, 0.0), 1.0) * plot_h

    parts = []
    for t in nice_ticks(0.0, 1.0, 4):
        y = py(t)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick_label(t)}</text>'
        )
    for t in nice_ticks(0.0, x_hi, 5):
        x = px(t)
        parts.append(
            f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}"/>'
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{tick_label(t)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{bottom}" y2="{bottom}"/>'
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{bottom}"/>'
        f'<text class="label" x="{_LEFT + plot_w / 2:.1f}" y="{bottom + 38}" '
        f'text-anchor="middle">{escape(p.x_label)}</text>'
        f'<text class="label" transform="translate(16 {_TOP + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">worst-case re-identification (lower is better)</text>'
    )
    if len(p.front) > 1:
        coords = " ".join(f"{px(q.x):.1f},{py(q.y):.1f}" for q in p.front)
        parts.append(f'<polyline class="front" fill="none" points="{coords}"/>')
    parts += _points(p, px, py)
    corner = "lower left" if p.x_better == "lower" else "lower right"
    title = f"Privacy-utility frontier: {p.promise} (better: {corner})"
    return Markup(
        f'<svg class="chart frontier" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" aria-label="{escape(title)}" '
        f'data-promise="{escape(p.promise)}"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )


def _points(p: Panel, px, py) -> list[str]:  # noqa: ANN001 - the scale functions above
    """A circle (filled when on the front) and a label per point."""
    placed: list[tuple[float, float, float]] = []
    out = []
    for q in sorted(p.points, key=lambda q: (q.y, q.x)):
        on_front = any(q is f for f in p.front)
        x, y = px(q.x), py(q.y)
        label = q.label + (" (demo)" if q.demo else "")
        width = 6.4 * len(label)
        anchor = "end" if x + 8 + width > _W else "start"
        lx = x - 8 if anchor == "end" else x + 8
        ly = _labels(placed, lx - (width if anchor == "end" else 0), y, width)
        where = f"x {q.x:.3f}, worst-case re-identification {q.y:.3f}"
        state = "on the Pareto front" if on_front else "dominated"
        note = f"; {q.note}" if q.note else ""
        out.append(
            f'<circle class="point{" front" if on_front else ""}" cx="{x:.1f}" cy="{y:.1f}" '
            f'r="4.5" data-label="{escape(q.label)}" data-x="{q.x!r}" data-y="{q.y!r}">'
            f"<title>{escape(label)}: {where} ({state}{escape(note)})</title></circle>"
            f'<text class="point-label" x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    return out
