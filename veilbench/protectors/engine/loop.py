"""The crafting loop over one batch of units, as three steps: set up the batch
(:func:`_setup`), take one sign step for every active unit (:func:`_step`, with a convergence
checkpoint every ``check_every`` iterations) and record each finished unit (:func:`_record`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from veilbench.errors import NumericalError
from veilbench.models.base import FaceModel
from veilbench.protectors import losses
from veilbench.protectors.engine.calibration import Calibration, criteria, thresholds
from veilbench.protectors.engine.config import (
    MAX_FEATURE_BOOST,
    CraftConfig,
    Objective,
    step_size,
)
from veilbench.protectors.engine.convergence import SurrogateFit, VeilConvergence
from veilbench.protectors.engine.layout import Layout, build_layout, feature_loss
from veilbench.protectors.engine.surrogates import embed_all
from veilbench.protectors.shift import random_shifts, roll_each

#: Called after every crafting iteration with the number of iterations done and the batch's
#: perturbations (units x 3 x S x S, on the device; read them, never write).
OnStep = Callable[[int, torch.Tensor], None]


class Bar:
    """What the loop reports progress to (a tqdm bar, or anything with ``update``)."""

    def update(self, n: int = 1) -> object: ...


@dataclass
class Crafted:
    """One finished unit: its perturbation (3 x S x S, on CPU), crafting statistics and the
    convergence record."""

    veil: torch.Tensor
    stats: dict
    convergence: VeilConvergence

    def veil_stats(self) -> dict:
        """The statistics as a veil file stores them (the record under ``convergence``)."""
        return {**self.stats, "convergence": self.convergence.to_dict()}


def unit_seed(seed: int, name: str) -> int:
    """A 63-bit seed from (seed, name): a unit's randomness ignores batch composition."""
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _initial(cfg: CraftConfig, images: torch.Tensor, seed: int, name: str) -> torch.Tensor:
    if cfg.init == "x1":
        return images[0].detach().to("cpu", torch.float32).clone()
    gen = torch.Generator().manual_seed(unit_seed(seed, name))
    return torch.rand(images.shape[1:], generator=gen) * 255.0


def raise_if_nonfinite(first_bad: torch.Tensor, never: int, names: list[str]) -> None:
    """Raise for the unit whose gradient went non-finite first (one device read)."""
    t_bad = int(first_bad.min())
    if t_bad < never:
        k = int((first_bad == t_bad).nonzero()[0, 0])
        raise NumericalError(
            f"non-finite gradient while crafting {names[k]!r} at iteration {t_bad}: check the "
            "surrogate model's output on these images, use precision=fp32 or smaller steps"
        )


@dataclass
class _Chunk:
    """One batch of units: its fixed inputs (photos, clean features, criteria) and the loop's
    state (perturbations, momentum, boosts, the active units and their layout)."""

    names: list[str]
    cfg: CraftConfig
    obj: Objective
    nets: list[torch.nn.Module]
    calib: Calibration
    x: torch.Tensor  # every unit's photos, each unit's rows contiguous
    counts: list[int]  # photos per unit
    offsets: list[int]  # first row of each unit
    owner: torch.Tensor  # unit of each photo
    rows: list[torch.Tensor]  # each unit's rows
    sets: torch.Tensor  # sets[i, :n]: the rows of photo i's unit (size n)
    clean: list[torch.Tensor]  # per surrogate: clean embeddings of every photo
    centroids: list[torch.Tensor]  # per surrogate: each photo's unit's clean centroid
    tau: torch.Tensor  # surrogates x units: the match thresholds
    img_rows: torch.Tensor  # each photo's identity row in the calibration
    veils: torch.Tensor
    momentum: torch.Tensor
    boost: torch.Tensor  # surrogates x units: multipliers of each surrogate's feature weight
    base: torch.Tensor  # surrogates x 1: the calibrated feature weights
    #: First iteration with a non-finite gradient per unit (``cap`` if none), kept on the
    #: device: read at checkpoints and after the loop, not every iteration.
    first_bad: torch.Tensor
    iterations: list[int]  # steps each unit took (the cap until it stops)
    units: list[int]  # the active units
    shift: int
    shifts_gen: torch.Generator
    scale: float  # fp16 loss scaling; sign steps ignore it
    layout: Layout | None = None  # rebuilt only when the active units change


def _clean_embeddings(
    c_nets: list[torch.nn.Module],
    models: list[FaceModel],
    x: torch.Tensor,
    owner: torch.Tensor,
    names: list[str],
    precision: str,
) -> list[torch.Tensor]:
    with torch.no_grad():
        clean = [e.detach() for e in embed_all(c_nets, x, precision)]
    for m, e in zip(models, clean, strict=True):
        bad = (~torch.isfinite(e).all(1)).nonzero()
        if bad.numel():
            raise NumericalError(
                f"surrogate {m.name} gives non-finite embeddings for the crafting photos of "
                f"{names[int(owner[bad[0, 0]])]!r}: check the model and that the photos are "
                "canonical crops in [0, 255]"
            )
    return clean


def _setup(
    names: list[str],
    images: list[torch.Tensor],
    models: list[FaceModel],
    cfg: CraftConfig,
    *,
    device: torch.device,
    seed: int,
    nets: list[torch.nn.Module],
    calib: Calibration,
    identity_rows: list[int],
) -> _Chunk:
    """The batch: photos stacked, clean features and criteria measured, random starts drawn."""
    x = torch.cat(images).to(device, torch.float32)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    counts = [len(im) for im in images]
    offsets = [sum(counts[:k]) for k in range(len(counts))]
    owner = torch.repeat_interleave(torch.arange(len(names)), torch.tensor(counts)).to(device)
    rows = [torch.arange(o, o + n, device=device) for o, n in zip(offsets, counts, strict=True)]
    longest = max(counts)
    sets = torch.stack([torch.cat([r, r[:1].expand(longest - len(r))]) for r in rows])[owner]
    clean = _clean_embeddings(nets, models, x, owner, names, cfg.precision)
    # Each unit's clean centroid per surrogate, and each image's copy (for the criteria).
    unit_cents = [
        torch.nn.functional.normalize(torch.stack([c[r].mean(0) for r in rows]), dim=1)
        for c in clean
    ]
    veils = torch.stack(
        [_initial(cfg, im, seed, n) for n, im in zip(names, images, strict=True)]
    ).to(device)
    if cfg.channels_last:
        veils = veils.contiguous(memory_format=torch.channels_last)
    return _Chunk(
        names=names,
        cfg=cfg,
        obj=cfg.objective(),
        nets=nets,
        calib=calib,
        x=x,
        counts=counts,
        offsets=offsets,
        owner=owner,
        rows=rows,
        sets=sets,
        clean=clean,
        centroids=[c[owner] for c in unit_cents],
        tau=thresholds(calib, clean, unit_cents, rows, cfg.match_level),
        img_rows=torch.tensor(identity_rows, device=device)[owner],
        veils=veils,
        momentum=torch.zeros_like(veils),
        boost=torch.ones(len(models), len(names), device=device),
        base=torch.tensor(calib.weights, device=device).view(-1, 1),
        first_bad=torch.full((len(names),), cfg.cap, dtype=torch.long, device=device),
        iterations=[cfg.cap] * len(names),
        units=list(range(len(names))),
        shift=int(getattr(cfg, "shift", 0)),
        shifts_gen=torch.Generator().manual_seed(seed),
        scale=1024.0 if cfg.precision == "fp16" else 1.0,
    )


def _gradient(c: _Chunk, layout: Layout) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """The loss gradient for every perturbation, the surrogates' embeddings and the blend."""
    cfg, obj, a = c.cfg, c.obj, c.cfg.alpha
    v = c.veils.clone().requires_grad_(True)
    xa = layout.xa
    v_each = v[layout.owner]
    if c.shift:  # expectation over keyed shifts: a fresh shift per photo per iteration
        v_each = roll_each(v_each, random_shifts(len(v_each), c.shift, c.shifts_gen))
    xp = a * xa + (1 - a) * v_each
    if cfg.clip == "blend":
        xp = xp.clamp(0, 255)
    if cfg.channels_last:
        xp = xp.contiguous(memory_format=torch.channels_last)
    embs = embed_all(c.nets, xp, cfg.precision)
    loss = feature_loss(obj, embs, layout, cfg.ensemble, (c.base * c.boost)[:, layout.owner])
    loss = loss - obj.lambda_vis * losses.visual_loss(xa, xp)
    if obj.mu_var:
        loss = loss + obj.mu_var * losses.block_variance(xp, obj.block_size, obj.block_stride)
    (grad,) = torch.autograd.grad(loss.sum() * c.scale, v)
    return grad, embs, xp


def _checkpoint(
    c: _Chunk,
    layout: Layout,
    t: int,
    embs: list[torch.Tensor],
    xp: torch.Tensor,
    may_stop: bool,
) -> list[bool]:
    """Check the criteria for the active units (boosting the surrogates a unit still fails,
    with adaptive balance); which of them are done."""
    cfg = c.cfg
    raise_if_nonfinite(c.first_bad, cfg.cap, c.names)
    with torch.no_grad():
        sel = layout.sel
        cos, ok = criteria(
            embs,
            [cen[sel] for cen in c.centroids],
            c.calib,
            c.img_rows[sel],
            c.tau[:, c.owner[sel]],
        )
        if cfg.until != "converged":  # the fixed schedule's optional early stop: one cosine
            ok = cos >= cfg.stop_cosine
        rms = (xp.detach() - layout.xa).pow(2).flatten(1).mean(1).sqrt()
        adaptive = cfg.until == "converged" and cfg.balance == "adaptive"
        met, start = [], 0
        for k, n in zip(layout.units, layout.lengths, strict=True):
            fits = ok[:, start : start + n].all(1)  # per surrogate
            if adaptive:
                c.boost[:, k] = torch.where(
                    fits, c.boost[:, k], (2 * c.boost[:, k]).clamp(max=MAX_FEATURE_BOOST)
                )
            far = rms[start : start + n].mean() >= cfg.stop_rms
            met.append(fits.all() & far & may_stop)
            start += n
    return torch.stack(met).tolist()  # one device read per checkpoint


def _step(c: _Chunk, t: int) -> None:
    """Iteration ``t``: one MI-FGSM sign step for every active unit, and a checkpoint when due
    (units that meet their criteria leave the batch)."""
    cfg = c.cfg
    if c.layout is None:
        c.layout = build_layout(c.obj, c.units, c.offsets, c.counts, c.x, c.owner, c.sets, c.clean)
    layout = c.layout
    grad, embs, xp = _gradient(c, layout)
    idx = layout.idx
    grad = grad[idx]
    finite = torch.isfinite(grad).flatten(1).all(1)
    seen = c.first_bad[idx]
    c.first_bad[idx] = torch.where(finite, seen, seen.clamp(max=t))
    # A unit with a bad gradient takes no step from it, so no NaN enters later iterations;
    # the whole chunk raises at the next checkpoint or after the loop.
    grad = grad.masked_fill(~finite.view(-1, 1, 1, 1), 0.0)
    converge = cfg.until == "converged"
    may_stop = t >= cfg.first_check or not converge
    adaptive = converge and cfg.balance == "adaptive"
    checking = converge or cfg.early_stop
    if checking and t > 0 and t % cfg.check_every == 0 and (may_stop or adaptive):
        done = _checkpoint(c, layout, t, embs, xp, may_stop)
        if any(done):
            keep = [j for j, d in enumerate(done) if not d]
            for j, k in enumerate(layout.units):
                if done[j]:
                    c.iterations[k] = t
            pick = torch.tensor(keep, dtype=torch.long, device=c.x.device)
            idx, grad = idx[pick], grad[pick]
            c.units = [layout.units[j] for j in keep]
            c.layout = None  # rebuilt for the remaining units next iteration
    if idx.numel():
        l1 = grad.abs().flatten(1).sum(1).clamp_min(1e-30).view(-1, 1, 1, 1)
        c.momentum[idx] = cfg.decay * c.momentum[idx] + grad / l1
        c.veils[idx] -= step_size(cfg, t) * c.momentum[idx].sign()
        if cfg.clip == "veil":
            c.veils.clamp_(0, 255)


def _unit(
    c: _Chunk,
    k: int,
    models: list[FaceModel],
    veil: torch.Tensor,
    measured: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    seconds: float,
) -> Crafted:
    """Unit ``k``'s result from the final forward (cosines, matches and RMS per photo)."""
    cfg, r = c.cfg, c.rows[k]
    cos, ok, rms = measured
    fits = {
        m.name: SurrogateFit(
            cosine_min=round(float(cos[j, r].min()), 5),
            cosine_mean=round(float(cos[j, r].mean()), 5),
            threshold=round(float(c.tau[j, k]), 5),
            matched=round(float(ok[j, r].float().mean()), 5),
        )
        for j, m in enumerate(models)
    }
    unit_rms = float(rms[r].mean())
    record = VeilConvergence(
        converged=bool(ok[:, r].all()) and unit_rms >= cfg.stop_rms,
        iterations=c.iterations[k],
        cap=cfg.cap,
        until=cfg.until,
        rms=round(unit_rms, 3),
        surrogates=fits,
        rms_target=cfg.stop_rms,
        feature_weights={
            m.name: round(float(c.base[j, 0] * c.boost[j, k]), 5) for j, m in enumerate(models)
        },
        calibration=c.calib.to_dict(models),
    )
    stats = {
        "iterations": c.iterations[k],
        "stopped_early": c.iterations[k] < cfg.cap,
        "seconds": round(seconds, 3),
        "cosine_to_centroid_min": round(float(cos[:, r].min(0).values.min()), 5),
        "cosine_to_centroid_mean": round(float(cos[:, r].min(0).values.mean()), 5),
        "rms": round(unit_rms, 3),
    }
    return Crafted(veil.detach().cpu().contiguous(), stats, record)


def _record(c: _Chunk, models: list[FaceModel], t0: float) -> list[Crafted]:
    """Every unit's result; the record describes the veil as saved (quantised), whatever the
    checkpoints saw."""
    cfg, a = c.cfg, c.cfg.alpha
    veils = c.veils
    if cfg.clip == "veil" and cfg.quantize:
        veils = veils.round()
    with torch.no_grad():
        xp = (a * c.x + (1 - a) * veils[c.owner]).clamp(0, 255)
        embs = embed_all(c.nets, xp, cfg.precision)
        cos, ok = criteria(embs, c.centroids, c.calib, c.img_rows, c.tau[:, c.owner])
        rms = (xp - c.x).pow(2).flatten(1).mean(1).sqrt()
    seconds = (time.perf_counter() - t0) / len(c.names)
    return [_unit(c, k, models, veils[k], (cos, ok, rms), seconds) for k in range(len(c.names))]


def craft_chunk(
    names: list[str],
    images: list[torch.Tensor],
    models: list[FaceModel],
    cfg: CraftConfig,
    *,
    device: torch.device,
    seed: int,
    bar: Bar,
    nets: list[torch.nn.Module],
    calib: Calibration,
    identity_rows: list[int],
    on_step: OnStep | None = None,
) -> list[Crafted]:
    """Craft one batch of units together; see the package docstring.

    ``nets`` are what the loop calls for ``models`` (see :func:`surrogates.ready`);
    ``identity_rows[k]`` is unit k's identity's row in ``calib`` (its own row in the 1:N match).
    """
    t0 = time.perf_counter()
    c = _setup(
        names,
        images,
        models,
        cfg,
        device=device,
        seed=seed,
        nets=nets,
        calib=calib,
        identity_rows=identity_rows,
    )
    steps = 0
    for t in range(cfg.cap):
        if not c.units:
            break
        _step(c, t)
        bar.update(1)
        steps += 1
        if on_step is not None:
            on_step(steps, c.veils)
    bar.update(cfg.cap - steps)  # units that stopped early leave the bar short
    raise_if_nonfinite(c.first_bad, cfg.cap, names)
    return _record(c, models, t0)
