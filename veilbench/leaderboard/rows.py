"""One leaderboard row per protector variant, read from its surrogate sets' typed records.

Every privacy figure is a black-box one (an attacker's model: a target that did not craft the
photos) on held-out photos; the service's figures are the white-box ones. The worst case is
the highest re-identification rate any threat in the file reached (:func:`threats`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from veilbench.leaderboard.figures import Figure, mean_figure, number_figure, rate_figure, seconds
from veilbench.leaderboard.protectors import (
    ProtectorInfo,
    protector_info,
    skipped_adversaries,
    threat_status,
)
from veilbench.measurements.charts import safe_uri
from veilbench.measurements.contract import Where
from veilbench.measurements.records import Rate, mean, rate_value
from veilbench.plugins import Plugins
from veilbench.report import fmt
from veilbench.results import ProtectorResults, ResultsDocument

SUBSET = "held_out"  # never seen while crafting: the photos a protection must generalise to
FAR = "1e-3"
NO_ATTACKER = "no attacker's model: every target crafted these photos (white-box)"


@dataclass
class Threat:
    """One way an attacker's model (``target``) re-identified the protected people."""

    rate: Rate
    attack: str  # "protected photos", "jpeg quality=50", "average k=2"
    kind: str  # plain | purification | processing | adversary
    target: str
    set_key: str
    metric: str = "rank-1"  # robustness curves record MSR, not rank-1

    @property
    def label(self) -> str:
        metric = "" if self.metric == "rank-1" else f" ({self.metric})"
        return f"{self.attack} → {self.target}{metric}"


@dataclass
class Row:
    """A protector variant's figures (every figure present; "n/a" where not measured)."""

    variant: str  # the name in the results file, e.g. "pixelate[block=8]"
    label: str  # the variant, with its file when two files hold the same name
    info: ProtectorInfo
    config: dict[str, Any]
    source: str
    attackers: dict[str, Figure]  # black-box target -> rank-1 of protected held-out photos
    worst: Figure
    worst_by: str  # which threat gave the worst case
    worst_kind: str
    figures: dict[str, Figure]  # column key -> figure (see table.FIGURE_COLUMNS)
    threats: list[dict[str, Any]]  # threat -> run / not run, declared or not
    samples: list[dict[str, Any]] = field(default_factory=list)
    samples_note: str = ""
    skipped: list[str] = field(default_factory=list)  # adversaries not run against it, and why

    @property
    def promise(self) -> str:
        return self.info.traits.promise

    def utility_score(self) -> float | None:
        """The declared utility on one "higher is better" scale, to break worst-case ties:
        1 - LPIPS, the service's TAR (else MSR), or the recovered SSIM; 0 for none."""
        utility = self.info.traits.utility
        if utility == "lpips":
            lpips = self.figures["lpips"].value
            return None if lpips is None else 1.0 - min(lpips, 1.0)
        if utility == "white_box_tar":
            tar, msr = self.figures["service_tar"].value, self.figures["service_msr"].value
            return tar if tar is not None else msr
        if utility in ("recovery", "recoverability"):
            return self.figures["recovered_ssim"].value
        return 0.0


def threats(w: Where) -> Iterator[Threat]:
    """Every black-box re-identification rate of one surrogate set: the protected photos,
    each purification at each strength, each simple processing, each adversary at each k."""
    for t, cells in (w.records.get("msr") or {}).items():
        if not w.white_box(t) and SUBSET in cells:
            yield Threat(cells[SUBSET].rank1_protected, "protected photos", "plain", t, w.key)
    for attack, curve in (w.records.get("robustness") or {}).items():
        for t, rates in curve.protected.items():
            for strength, rate in zip(curve.strengths, rates, strict=False):
                if not w.white_box(t):
                    what = f"{attack} {curve.parameter or 'strength'}={strength:g}"
                    yield Threat(rate, what, "purification", t, w.key, "MSR")
    perception = w.records.get("perception")
    for name, cell in (getattr(perception, "processed", None) or {}).items():
        for t, rate in cell.protected.items():
            if not w.white_box(t):
                yield Threat(rate, name, "processing", t, w.key)
    for a in getattr(w.records.get("adversaries"), "results", None) or []:
        for t, cell in a.reid.items():
            if not w.white_box(t):
                yield Threat(cell.rank1, f"{a.adversary} k={a.k}", "adversary", t, w.key)


def worst_case(sets: list[Where]) -> Threat | None:
    """The threat with the highest re-identification rate (the first one on a tie, so the
    plain protected photos win a tie with an attack that did no better)."""
    worst: Threat | None = None
    highest = -1.0
    for w in sets:
        for threat in threats(w):
            value = rate_value(threat.rate)
            if value is not None and value > highest:
                worst, highest = threat, value
    return worst


def _held_out(sets: list[Where], white: bool, pick: Any) -> list[Rate]:
    """``pick(cell)`` of each held-out MSR cell on the white- (or black-) box side."""
    return [
        pick(cells[SUBSET])
        for w in sets
        for t, cells in (w.records.get("msr") or {}).items()
        if w.white_box(t) == white and SUBSET in cells
    ]


def _tar(sets: list[Where], white: bool) -> list[Rate]:
    """TAR at FAR 1e-3 of the held-out photos, where the FAR could be estimated."""
    out = []
    for w in sets:
        record = w.records.get("verification")
        for t, cells in (getattr(record, "cells", None) or {}).items():
            point = cells[SUBSET].points.get(FAR) if SUBSET in cells else None
            if w.white_box(t) == white and point is not None:
                out.append(point.tar)
    return out


def attacker_figures(sets: list[Where]) -> dict[str, Figure]:
    """Per attacker's model, rank-1 of the protected held-out photos (the highest over the
    surrogate sets it attacked); MSR on hover."""
    best: dict[str, tuple[Rate, Rate, str]] = {}
    for w in sets:
        for t, cells in (w.records.get("msr") or {}).items():
            if w.white_box(t) or SUBSET not in cells:
                continue
            cell = cells[SUBSET]
            value = rate_value(cell.rank1_protected)
            held = best.get(t)
            if held is None or (value or 0.0) > (rate_value(held[0]) or 0.0):
                best[t] = (cell.rank1_protected, cell.msr, w.key)
    return {
        t: rate_figure(rank1, f"crafted on {key}; MSR {fmt(rate_value(msr), 2)}")
        for t, (rank1, msr, key) in best.items()
    }


def _quality(sets: list[Where], kind: str, name: str) -> float | None:
    values = []
    for w in sets:
        q = getattr(w.records.get("image_quality"), kind, None)
        values.append(getattr(q, name, None) if q is not None else None)
    return mean(values)


def quality_figures(sets: list[Where], recoverable: bool) -> dict[str, Figure]:
    """Visual cost of the protected photos, and recovery quality when it can be undone."""
    why = "recoverable, but no recovered photos measured" if recoverable else "not recoverable"
    out = {
        "ssim": number_figure(_quality(sets, "protected", "ssim"), 3, "protected vs original"),
        "lpips": number_figure(_quality(sets, "protected", "lpips"), 3, "protected vs original"),
        "psnr": number_figure(_quality(sets, "protected", "psnr"), 1, "protected vs original"),
    }
    for name, digits in (("ssim", 3), ("psnr", 1)):
        value = _quality(sets, "recovered", name) if recoverable else None
        out[f"recovered_{name}"] = (
            number_figure(value, digits, "recovered vs original")
            if value is not None
            else Figure.missing(why)
        )
    return out


def service_figures(sets: list[Where], utility: str) -> dict[str, Figure]:
    """The service's own model on the protected photos, where that is the declared utility."""
    if utility != "white_box_tar":
        why = f"utility {utility}: the service keeps no recognition"
        return {"service_msr": Figure.missing(why), "service_tar": Figure.missing(why)}
    return {
        "service_msr": mean_figure(_held_out(sets, True, lambda c: c.msr), "white-box MSR"),
        "service_tar": mean_figure(_tar(sets, True), f"white-box TAR at FAR {FAR}"),
    }


def cost_figures(sets: list[Where]) -> dict[str, Figure]:
    timings = [t for w in sets if (t := w.records.get("cost")) is not None]
    return {
        "cost_photo": seconds(mean(t.per_image for t in timings), "crafting seconds per photo"),
        "cost_person": seconds(mean(t.per_veil for t in timings), "crafting seconds per person"),
    }


def samples(sets: list[Where], secrets: bool, limit: int = 2) -> tuple[list[dict[str, Any]], str]:
    """Up to ``limit`` people's thumbnails (original, protected, recovered; never a veil)."""
    if secrets:
        return [], "no images (this file's samples contain secrets: never shown here)"
    people = []
    for w in sets:
        for identity, images in (w.records.get("samples") or {}).items():
            shown = [
                {"label": name, "uri": uri}
                for name in ("original", "protected", "recovered")
                if (uri := safe_uri(images.get(name))) is not None
            ]
            if shown and len(people) < limit:
                people.append({"identity": str(identity), "images": shown})
    return people, "" if people else "no images (samples = false)"


def read_row(
    name: str,
    results: ProtectorResults,
    sets: list[Where],
    doc: ResultsDocument,
    plugins: Plugins,
    source: str = "",
) -> Row:
    """The row of one protector variant of a results document."""
    info = protector_info(name, results.protector, plugins)
    worst = worst_case(sets)
    black = _held_out(sets, False, lambda c: c.rank1_protected)
    figures = {
        "blackbox": mean_figure(black, "black-box rank-1, held-out"),
        "tar_black": mean_figure(_tar(sets, False), f"black-box TAR at FAR {FAR}; PSR = 1 - TAR"),
        **quality_figures(sets, info.traits.recoverable),
        **service_figures(sets, info.traits.utility),
        **cost_figures(sets),
    }
    shown, note = samples(sets, doc.results.samples_contain_secrets)
    return Row(
        variant=name,
        label=name,
        info=info,
        config=dict(results.config),
        source=source,
        attackers=attacker_figures(sets),
        worst=rate_figure(worst.rate, worst.label) if worst else Figure.missing(NO_ATTACKER),
        worst_by=worst.label if worst else "",
        worst_kind=worst.kind if worst else "",
        figures=figures,
        threats=threat_status(sets, info.traits.threats, plugins),
        samples=shown,
        samples_note=note,
        skipped=skipped_adversaries(sets),
    )
