"""Privacy under attack: every adversary at every k tries to undo the protection; its
reconstructions are matched by every target and compared with the originals.

Every number here is a privacy LOSS when high (except LPIPS). ``baseline`` is the do-nothing
attacker (the protected photos themselves, the same ``k`` per person).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veilbench.measurements.charts import heat_style, number, safe_uri
from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)
from veilbench.measurements.records import ImageQuality, Rate, legacy_rate, mean, rate_value


@dataclass
class ReidCell:
    """One target model's answers for reconstructed photos (1:N against the clean gallery)."""

    rank1: Rate  # share answered with the right person: re-identified
    msr: Rate  # share answered like the clean original photo
    n: int
    #: far label -> share accepted as the right person 1:1 (see ``verification``): re-verified
    tar: dict[str, Rate] = field(default_factory=dict)


@dataclass
class AdversaryResult:
    """One adversary given ``k`` protected photos per person: how much of the faces it undoes."""

    adversary: str
    k: int
    threat: str  # what the adversary is given, in words
    reid: dict[str, ReidCell]  # target -> reconstructions matched against the clean gallery
    quality: ImageQuality  # reconstruction vs original
    baseline: dict[str, ReidCell] = field(default_factory=dict)  # target -> protected photos
    identities: int = 0  # people attacked (those with at least k photos, k + 1 for a pair)
    seconds: float | None = None


@dataclass
class Adversaries:
    """Every adversary at every k, and per identity the thumbnails of its reconstructions."""

    results: list[AdversaryResult] = field(default_factory=list)
    #: identity -> label -> thumbnail: the original, a protected photo (a different photo
    #: unless secret_samples) and each adversary's reconstruction of the original.
    samples: dict[str, dict[str, str]] = field(default_factory=dict)
    #: adversary -> why it was not run against this protector (its threat does not apply)
    skipped: dict[str, str] = field(default_factory=dict)


def best_adversary(record: Adversaries | None, where: Where) -> AdversaryResult | None:
    """The adversary (and k) whose reconstructions black-box targets re-identify most."""
    scored = [
        (rate, a)
        for a in (record.results if record else [])
        if (rate := mean(c.rank1.value for t, c in a.reid.items() if not where.white_box(t)))
        is not None
    ]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


class AdversaryMeasurement(Measurement):
    name = "adversaries"
    title = "Privacy under attack"
    description = "each --adversaries attacker at each k: reconstructions re-identified"
    needs = ("protected", "gallery", "models", "adversaries")
    record = Adversaries
    metrics = {
        "reid_black": Metric(
            "reid", "lower", "attacker's model re-identifies reconstructed photos"
        ),
        "reid_white": Metric("reid", "lower", "crafting model re-identifies reconstructed photos"),
        "reid_msr": Metric("reid", "lower", "reconstructed photos answered like their originals"),
        "reid_tar": Metric(
            "tar", "lower", "reconstructions an attacker's model verifies as the person (1:1, FAR)"
        ),
        "ssim_reconstructed": Metric("ssim", "lower", "SSIM reconstruction vs original: face back"),
        "lpips_reconstructed": Metric("lpips", "higher", "LPIPS reconstruction vs original"),
        "psnr_reconstructed": Metric("psnr", "lower", "PSNR reconstruction vs original"),
    }
    nav = "Privacy under attack"
    anchor = "under-attack"
    template = "_adversaries.html"
    order = 30

    def applies(self, config: Any) -> bool:
        return bool(config.adversaries.strip())

    def evaluate(self, ctx: Context) -> Adversaries | None:
        from veilbench.evaluation.adversaries import evaluate_adversaries, public_knowledge

        if not ctx.adversaries:
            return None
        from veilbench.protectors.contract import traits

        # Each adversary attacks one threat (its registration's ``applies_to``); a protector
        # declares the threats that apply to it: the veil's algebra is no attack on a blur.
        threats = traits(ctx.protector).threats
        chosen, skipped = [], {}
        for entry in ctx.adversaries:
            kind = str(entry.metadata.get("applies_to", "reused_perturbation"))
            if kind in threats:
                chosen.append(entry)
            else:
                declared = ", ".join(threats) or "none"
                skipped[entry.name] = f"attacks {kind!r}; {ctx.protector_name} declares {declared}"
        if not chosen:
            return Adversaries(skipped=skipped)
        config, models = ctx.config, ctx.models
        # The attacker's own models: those that did not craft these photos (black-box).
        attacker = [m for n, m in models.items() if n not in ctx.members] or [
            models[ctx.members[0]]
        ]
        public = public_knowledge(
            ctx.data, ctx.protector, attacker, device=ctx.device, seed=config.seed, log=ctx.log
        )
        results, samples = evaluate_adversaries(
            ctx.targets,
            ctx.data,
            ctx.protected,
            chosen,
            public,
            ks=config.adversary_ks(),
            samples=config.samples,
            sample_secrets=config.secret_samples,
        )
        return Adversaries(results, samples, skipped)

    def values(self, record: Adversaries, where: Where) -> list[MetricValue]:
        out = []
        for a in record.results:
            for target, cell in a.reid.items():
                side = "white" if where.white_box(target) else "black"
                mid = f"{where.key}/{a.adversary}@k{a.k}->{target}"
                out.append(
                    MetricValue.rated(f"reid/{mid}", self.metrics[f"reid_{side}"], cell.rank1)
                )
                out.append(MetricValue.rated(f"reid_msr/{mid}", self.metrics["reid_msr"], cell.msr))
                for far, rate in cell.tar.items():
                    out.append(
                        MetricValue.rated(f"reid_tar@{far}/{mid}", self.metrics["reid_tar"], rate)
                    )
            for name in ("ssim", "lpips", "psnr"):
                mid = f"{name}/{where.key}/{a.adversary}@k{a.k}/reconstructed"
                metric = self.metrics[f"{name}_reconstructed"]
                out.append(MetricValue(mid, metric, getattr(a.quality, name)))
        return out

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        """Per surrogate set, one row per adversary and k; and the reconstruction image grid."""
        rows, grid = [], []
        for w in sets:
            record = w.records.get(self.name) or Adversaries()
            for a in record.results:
                rows.append(_row(w, a, run.targets))
            grid += [
                {
                    "surrogate": w.key,
                    "identity": str(identity),
                    "images": [
                        {"label": str(label), "uri": safe_uri(uri)} for label, uri in images.items()
                    ],
                }
                for identity, images in record.samples.items()
            ]
        skipped = [
            {"surrogate": w.key, "adversary": name, "reason": reason}
            for w in sets
            for name, reason in (w.records.get(self.name) or Adversaries()).skipped.items()
        ]
        return {"targets": run.targets, "rows": rows, "grid": grid, "skipped": skipped}

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        if not old.get("adversaries") and not old.get("adversary_samples"):
            return None

        def cells(table: dict[str, Any], people: Any) -> dict[str, Any]:
            return {
                t: {
                    **c,
                    "rank1": legacy_rate(c.get("rank1"), c.get("n"), people),
                    "msr": legacy_rate(c.get("msr"), c.get("n"), people),
                }
                for t, c in (table or {}).items()
            }

        results = [
            {
                **a,
                "reid": cells(a.get("reid"), a.get("identities")),
                "baseline": cells(a.get("baseline"), a.get("identities")),
            }
            for a in old.get("adversaries") or []
        ]
        return {"results": results, "samples": old.get("adversary_samples") or {}}


def _row(w: Where, a: AdversaryResult, targets: list[str]) -> dict[str, Any]:
    black = [c.rank1 for t, c in a.baseline.items() if not w.white_box(t)]
    cells = []
    for t in targets:
        cell = a.reid.get(t)
        rank1 = rate_value(cell.rank1) if cell else None
        cells.append(
            {
                "target": t,
                "rank1": rank1,
                "msr": rate_value(cell.msr) if cell else None,
                "rank1_rate": cell.rank1 if cell else None,
                "tar": rate_value(cell.tar.get("1e-3")) if cell else None,
                "white_box": w.white_box(t),
                "style": heat_style(rank1),
            }
        )
    return {
        "surrogate": w.key,
        "adversary": a.adversary,
        "k": a.k,
        "threat": a.threat,
        "identities": a.identities,
        "cells": cells,
        "baseline_black": mean(rate_value(r) for r in black),
        "ssim": number(a.quality.ssim),
        "lpips": number(a.quality.lpips),
        "psnr": number(a.quality.psnr),
    }
