"""The verification result as one self-contained HTML page: a metrics table and ROC curves.

Inline SVG and CSS only (no script, no network), so the page opens anywhere and can be archived.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

# Okabe-Ito, as the run report uses: readable with common colour-vision deficiencies.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_W, _H, _L, _R, _T, _B = 620, 380, 60, 20, 16, 56
_LOG_MIN = -4  # the x axis starts at FAR 1e-4


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def roc_svg(models: list[dict]) -> Markup:
    """TAR against FAR (log scale), one line per model, from each result's sampled ROC."""
    pw, ph = _W - _L - _R, _H - _T - _B

    def px(far: float) -> float:
        return _L + (math.log10(max(far, 10.0**_LOG_MIN)) - _LOG_MIN) / -_LOG_MIN * pw

    def py(tar: float) -> float:
        return _T + (1.0 - tar) * ph

    parts = []
    for k in range(_LOG_MIN, 1):
        x = px(10.0**k)
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{_T}" y2="{_T + ph}"/>')
        parts.append(f'<text x="{x:.1f}" y="{_T + ph + 18}" text-anchor="middle">1e{k}</text>')
    for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        y = py(t)
        parts.append(f'<line class="grid" x1="{_L}" x2="{_L + pw}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{_L - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(
        f'<text x="{_L + pw / 2}" y="{_H - 10}" text-anchor="middle">false accept rate (FAR)</text>'
        f'<text transform="translate(16 {_T + ph / 2}) rotate(-90)" text-anchor="middle">'
        "true accept rate (TAR)</text>"
    )
    for i, m in enumerate(models):
        colour = COLOURS[i % len(COLOURS)]
        pts = [
            (px(f), py(t))
            for f, t in zip(m["roc"]["far"], m["roc"]["tar"], strict=True)
            if f >= 10.0**_LOG_MIN
        ]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        label = escape(f"{m['model']} (AUC {m['auc']:.4f})")
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}">'
            f"<title>{label}</title></polyline>"
            f'<line x1="{_L + pw - 190}" x2="{_L + pw - 166}" y1="{_T + ph - 16 - 18 * i}" '
            f'y2="{_T + ph - 16 - 18 * i}" stroke="{colour}" stroke-width="2"/>'
            f'<text x="{_L + pw - 160}" y="{_T + ph - 12 - 18 * i}">{label}</text>'
        )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {_W} {_H}" '
        f'width="{_W}" height="{_H}" aria-label="ROC curves"><title>ROC curves</title>'
        f"{''.join(parts)}</svg>"
    )


def _rows(models: list[dict]) -> str:
    rows = []
    for m in models:
        tars = {t["far"]: t for t in m["tar_at_far"]}
        cells = [
            m["model"],
            _pct(m["accuracy"]["mean"]),
            _pct(m["balanced_accuracy"]["mean"]),
            _pct(m["eer"]),
            f"{m['auc']:.4f}",
            *(_pct(tars[f]["tar"]) if f in tars else "n/a" for f in (1e-2, 1e-3)),
            str(m["alignment"]["no_face"]),
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows)


def render_page(doc: dict) -> str:
    """The whole page for a verification document (see ``verification.run``)."""
    pairs, models = doc["pairs"], doc["models"]
    notes = sorted({t["note"] for m in models for t in m["tar_at_far"] if t["note"]})
    folds = ", ".join(f"{f['matched']}/{f['mismatched']}" for f in pairs["folds"])
    head = (
        "<tr><th>model</th><th>accuracy</th><th>balanced accuracy</th><th>EER</th><th>AUC</th>"
        "<th>TAR@FAR 1e-2</th><th>TAR@FAR 1e-3</th><th>no face found</th></tr>"
    )
    name, impostors = escape(doc["dataset"]["name"]), escape(doc["protocol"]["impostors"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>veilbench verify: {name}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 960px; margin: 2em auto; color: #111; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
td {{ text-align: right; }} td:first-child {{ text-align: left; }}
svg text {{ font-size: 12px; }} svg .grid {{ stroke: #ddd; }}
</style></head><body>
<h1>Face verification on {name}</h1>
<p>{escape(doc["dataset"]["description"])}; alignment <b>{escape(doc["dataset"]["alignment"])}</b>;
flip-augmented embeddings: {"yes" if doc["protocol"]["flip"] else "no"}.</p>
<p>{pairs["usable"]:,} of {pairs["total"]:,} pairs usable ({pairs["matched"]:,} matched,
{pairs["mismatched"]:,} mismatched); {pairs["missing"]:,} pairs have a photo missing and are left
out. Matched/mismatched per fold: {escape(folds)}. Accuracy is the mean over folds, each fold's
threshold chosen on the others; balanced accuracy (mean of TAR and 1 - FAR) keeps unbalanced
folds comparable with published figures. Impostors for the ROC: {impostors}.</p>
<table>{head}{_rows(models)}</table>
{"".join(f"<p>{escape(n)}</p>" for n in notes)}
<h2>ROC</h2>
{roc_svg(models)}
<p><small>veilbench {escape(doc["veilbench"])},
pairs file sha256 {escape(pairs["sha256"][:16])}...</small></p>
</body></html>
"""
