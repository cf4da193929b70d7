"""Inline SVG and colours for the report, built in Python so the page needs no JavaScript."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in greyscale print.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933")
# ColorBrewer "Blues": a sequential scale, so darker always means a higher MSR.
_HEAT_STOPS = ((0.0, (247, 251, 255)), (0.5, (107, 174, 214)), (1.0, (8, 48, 107)))
_NA_STYLE = "background-color:#eeeeee;color:#555555"


def number(value: object) -> float | None:
    """A finite float, or None for null, NaN, booleans and anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def heat_style(value: object) -> str:
    """Inline CSS for a heatmap cell: background by value in [0, 1], text that stays readable."""
    v = number(value)
    if v is None:
        return _NA_STYLE
    v = min(1.0, max(0.0, v))
    for (lo, c0), (hi, c1) in zip(_HEAT_STOPS, _HEAT_STOPS[1:], strict=False):
        if v <= hi:
            t = (v - lo) / (hi - lo)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            break
    text = "#ffffff" if v > 0.55 else "#111111"
    return "background-color:#{:02x}{:02x}{:02x};color:{}".format(*rgb, text)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions (steps of 1, 2, 2.5 or 5 x 10^k) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, count)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    start = math.ceil(lo / step - 1e-9) * step
    n = int(math.floor((hi - start) / step + 1e-9))
    return [round(start + i * step, 10) for i in range(n + 1)]


def tick_label(value: float) -> str:
    """A tick label without trailing zeros (30, 0.25)."""
    return f"{value:g}"


@dataclass
class Series:
    """One line of a chart; ``None`` values leave a gap."""

    label: str
    values: Sequence[float | None]
    colour: str
    dashed: bool = False
    in_legend: bool = True


_W, _LEFT, _RIGHT, _TOP, _PLOT_H = 560, 56, 18, 14, 230
_AXIS_SPACE, _LEGEND_ROW = 52, 20  # below the plot: tick labels + axis label; per legend row


def line_chart(
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    title: str,
    key: Sequence[Series] = (),
    css_class: str = "chart",
    data: dict[str, str] | None = None,
) -> Markup:
    """An SVG line chart with axes, ticks, grid lines, hover titles on points, and a legend.

    The legend lists the series with ``in_legend`` and then ``key``: entries that are not drawn
    (e.g. "dashed = clean photos"), so paired lines need not each take a legend entry.
    """
    y_max = max([1.0, *(v for s in series for v in map(number, s.values) if v is not None)])
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi <= x_lo:  # one strength only: centre it in a unit-wide domain
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    plot_w = _W - _LEFT - _RIGHT

    def px(x: float) -> float:
        return _LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return _TOP + _PLOT_H - y / y_max * _PLOT_H

    parts: list[str] = []
    bottom = _TOP + _PLOT_H
    for t in nice_ticks(0.0, y_max, 4):
        y = py(t)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick_label(t)}</text>'
        )
    for t in nice_ticks(x_lo, x_hi, 6):
        x = px(t)
        parts.append(
            f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{tick_label(t)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{bottom}" y2="{bottom}"/>'
    )
    parts.append(f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{bottom}"/>')
    parts.append(
        f'<text class="label" x="{_LEFT + plot_w / 2:.1f}" y="{bottom + 38}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="label" transform="translate(16 {_TOP + _PLOT_H / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for s in series:
        parts.extend(_series_svg(s, xs, px, py, x_label))
    legend, legend_h = _legend([*(s for s in series if s.in_legend), *key], bottom + _AXIS_SPACE)
    parts.extend(legend)
    height = bottom + _AXIS_SPACE + legend_h
    attrs = "".join(f' data-{k}="{escape(v)}"' for k, v in (data or {}).items())
    return Markup(
        f'<svg class="{escape(css_class)}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'aria-label="{escape(title)}"{attrs}><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )


def _series_svg(
    s: Series,
    xs: Sequence[float],
    px: Callable[[float], float],
    py: Callable[[float], float],
    x_label: str,
) -> list[str]:
    """Polylines between consecutive known points, and a circle with a hover title per point."""
    points = [
        (x, number(v)) for x, v in zip(xs, s.values, strict=False)
    ]  # a short series ends early
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    width = 1.6 if s.dashed else 2.4
    out, run = [], []
    for x, v in [*points, (None, None)]:
        if v is None or x is None:
            if len(run) > 1:
                coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
                out.append(
                    f'<polyline fill="none" stroke="{s.colour}" stroke-width="{width}"{dash} '
                    f'points="{coords}"/>'
                )
            run = []
            continue
        run.append((px(x), py(v)))
    for x, v in points:
        if v is None:
            continue
        fill = "#ffffff" if s.dashed else s.colour
        out.append(
            f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3.2" fill="{fill}" stroke="{s.colour}" '
            f'stroke-width="1.5"><title>{escape(s.label)}: {escape(x_label)} {tick_label(x)} '
            f"\u2192 {v:.3f}</title></circle>"
        )
    return out


def _legend(series: Sequence[Series], top: float) -> tuple[list[str], int]:
    """Legend entries flowing left to right, wrapping to new rows; returns (svg parts, height)."""
    parts, x, row = [], float(_LEFT), 0
    for s in series:
        width = 34 + 6.6 * len(s.label)
        if x + width > _W - _RIGHT and x > _LEFT:
            x, row = float(_LEFT), row + 1
        y = top + row * _LEGEND_ROW
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<line x1="{x:.1f}" x2="{x + 24:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{s.colour}" '
            f'stroke-width="{1.6 if s.dashed else 2.4}"{dash}/>'
            f'<text x="{x + 30:.1f}" y="{y + 4:.1f}">{escape(s.label)}</text>'
        )
        x += width + 12
    return parts, (row + 1) * _LEGEND_ROW if series else 0


# Only inline raster images: a results file must not make the page fetch anything.
_DATA_URI = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$")


def safe_uri(value: object) -> str | None:
    """An inline image URI, or None for anything that could make the page fetch something."""
    return value if isinstance(value, str) and _DATA_URI.match(value) else None
