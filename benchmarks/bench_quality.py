"""Figure 3: wall time until veils meet white-box quality, per step-size schedule and with the
engine's own early stopping, against a real gallery.

Quality is the runner's definition: MSR >= 0.95 (each protected crafting photo's top-1 gallery
identity equals its original's) by the surrogate, and mean SSIM(original, protected) <= 0.05.
The gallery holds each crafter's 5 enrolment photos (not used to craft) and one photo each of
many other LFW people, as the runner's protocol does.
"""

from __future__ import annotations

import numpy as np
import torch
from bench_common import LFW_DEV, Context, StepProbe

from veilbench.evaluation.identification import Gallery, embed
from veilbench.evaluation.image_metrics import ssim
from veilbench.models.base import FaceSpace
from veilbench.protectors.engine import craft_batch
from veilbench.protectors.veil import VeilConfig

MSR_MIN, SSIM_MAX = 0.95, 0.05


class _Reached(Exception):
    """Raised from the step probe to end crafting once quality is met."""


def _schedules(quick: bool) -> dict[str, tuple[float, float]]:
    default = VeilConfig()
    out = {"default": (default.step_start, default.step_end)}
    if not quick:
        out |= {"gentle": (4.0, 0.5), "aggressive": (16.0, 1.0)}
    return out


def _people(
    crafters: int, photos: int, distractors: int, device
) -> tuple[dict[str, torch.Tensor], list[str], torch.Tensor]:
    """Crafting photos per crafter; gallery crops (enrolment + one photo of other people)."""
    from veilbench.data.datasets import image_folder, prepare

    ds = image_folder(LFW_DEV, alignment="center")
    groups = ds.by_identity()
    rich = [n for n, refs in groups.items() if len(refs) >= photos + 5][:crafters]
    others = [n for n in groups if n not in rich][:distractors]
    craft_refs = [r for n in rich for r in groups[n][:photos]]
    gallery_refs = [r for n in rich for r in groups[n][photos : photos + 5]]
    gallery_refs += [groups[n][0] for n in others]
    prepared = prepare(ds, craft_refs + gallery_refs, FaceSpace())
    crops = {str(r.path): c for r, c in zip(prepared.refs, prepared.crops, strict=True)}

    def tensor(refs) -> torch.Tensor:
        arr = np.stack([crops[str(r.path)] for r in refs if str(r.path) in crops])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float().to(device)

    craft = {n: tensor(groups[n][:photos]) for n in rich}
    kept = [r for r in gallery_refs if str(r.path) in crops]
    return craft, [r.identity for r in kept], tensor(kept)


def _quality(model, gallery: Gallery, x, xp, original_top1, device) -> tuple[float, float]:
    answers = gallery.top1(embed(model, xp, device=device))
    return float((answers == original_top1).mean()), float(ssim(x, xp).mean())


def time_to_quality(ctx: Context) -> dict:
    """Craft with a quality check every few iterations until MSR and SSIM are both met."""
    crafters, photos, distractors = ctx.size((2, 10, 1000), (1, 4, 100), (1, 2, 20))
    every, cap = 2, ctx.size(40, 40, 4)
    model = ctx.model("sface")
    craft, labels, gallery_crops = _people(crafters, photos, distractors, ctx.device)
    gallery = Gallery(embed(model, gallery_crops, device=ctx.device), labels)
    images = list(craft.values())
    x = torch.cat(images)
    owner = torch.repeat_interleave(
        torch.arange(len(images)), torch.tensor([len(i) for i in images])
    ).to(ctx.device)
    original_top1 = gallery.top1(embed(model, x, device=ctx.device))
    out: dict = {
        "identities": crafters,
        "photos": photos,
        "gallery_images": len(labels),
        "checkpoint_every": every,
        "cap_iterations": cap,
        "surrogate": "sface",
        "criterion": f"white-box MSR >= {MSR_MIN} and mean SSIM <= {SSIM_MAX}",
        "schedules": {},
    }
    fixed_iterations = VeilConfig().iterations
    for label, (start, end) in _schedules(ctx.quick).items():
        cfg = VeilConfig(step_start=start, step_end=end)
        log: list[dict] = []

        def check(veils: torch.Tensor, t: int, cfg=cfg, log=log) -> None:
            if t % every and t < cap:
                return
            veils = veils.detach().round()
            xp = (cfg.alpha * x + (1 - cfg.alpha) * veils[owner]).clamp(0, 255)
            msr, s = _quality(model, gallery, x, xp, original_top1, ctx.device)
            log.append({"iteration": t, "msr": msr, "ssim": s})
            if (msr >= MSR_MIN and s <= SSIM_MAX) or t >= cap:
                raise _Reached

        probe = StepProbe(check)
        try:
            craft_batch(craft, [model], cfg, device=ctx.device, on_step=probe)
        except _Reached:
            pass
        for entry in log:
            entry["craft_s"] = probe.times[entry["iteration"] - 1]
        met = [e for e in log if e["msr"] >= MSR_MIN and e["ssim"] <= SSIM_MAX]
        _, _, fixed = probe.projection(fixed_iterations)  # projected: the default schedule's length
        reached = met[0]["craft_s"] if met else float("nan")
        out["schedules"][label] = {
            "step_start": start,
            "step_end": end,
            "checkpoints": log,
            "iterations_to_quality": met[0]["iteration"] if met else None,
            "seconds_to_quality": reached,
            "fixed_schedule_s_projected": fixed,
            "share_of_fixed": reached / fixed,
            "msr_per_craft_second_at_4": next(
                (e["msr"] / e["craft_s"] for e in log if e["iteration"] == 4), None
            ),
        }
        ctx.add(
            f"time to quality, {label} schedule ({start:g}->{end:g})",
            reached,
            "s",
            "",
            f"{met[0]['iteration'] if met else 'not met by'} it; {reached / fixed:.0%} of "
            f"the fixed {fixed_iterations}-it schedule ({fixed:.0f}s projected)",
        )
    out["early_stop"] = _engine_early_stop(ctx, model, gallery, craft, x, owner, original_top1)
    return out


def _engine_early_stop(ctx, model, gallery, craft, x, owner, original_top1) -> dict:
    """The engine's own early stopping (cosine / RMS rule) vs the fixed schedule, timed whole."""
    runs = {}
    fixed = {"until": "fixed"} | ({"iterations": 4} if ctx.smoke else {})
    early = fixed | {"early_stop": True, "check_every": 2}
    for label, params in (("fixed", fixed), ("early_stop", early)):
        cfg = VeilConfig(**params)
        probe = StepProbe()
        crafted = craft_batch(craft, [model], cfg, device=ctx.device, on_step=probe)
        veils = torch.stack([c.veil for c in crafted]).to(ctx.device)
        xp = (cfg.alpha * x + (1 - cfg.alpha) * veils[owner]).clamp(0, 255).round()
        msr, s = _quality(model, gallery, x, xp, original_top1, ctx.device)
        runs[label] = {
            "seconds": probe.times[-1] if probe.times else float("nan"),
            "iterations": [c.stats["iterations"] for c in crafted],
            "msr": msr,
            "ssim": s,
        }
    ratio = runs["fixed"]["seconds"] / runs["early_stop"]["seconds"]
    e = runs["early_stop"]
    ctx.add(
        "engine early_stop: fixed schedule / early-stopped time",
        ratio,
        "x",
        "",
        f"stopped at {e['iterations']} it; MSR {e['msr']:.2f}, SSIM {e['ssim']:.3f} "
        f"(fixed: MSR {runs['fixed']['msr']:.2f}, SSIM {runs['fixed']['ssim']:.3f})",
    )
    return runs | {"speedup": ratio}
