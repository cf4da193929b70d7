"""Crafting many identities: inputs checked, the run calibrated once, stored veils resumed,
units batched ``batch_size`` at a time through the loop, finished veils assembled and saved.
:func:`craft_batch` crafts one batch directly (benchmarks, experiments)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from veilbench.errors import ConfigError, DataError, NumericalError
from veilbench.models.base import FaceModel
from veilbench.progress import progress_enabled
from veilbench.protectors.engine.cache import CraftKey, veil_path
from veilbench.protectors.engine.calibration import Calibration, calibrate
from veilbench.protectors.engine.config import CraftConfig
from veilbench.protectors.engine.convergence import merge
from veilbench.protectors.engine.loop import Bar, Crafted, OnStep, craft_chunk
from veilbench.protectors.engine.surrogates import check_compile, describe_surrogates, ready
from veilbench.veilfile import Veil, image_sha256, save_veil

#: (unit name, identity, its crafting photos): one perturbation to craft.
Unit = tuple[str, str, torch.Tensor]


def check_inputs(
    identities: dict[str, torch.Tensor], surrogates: list[FaceModel], cfg: CraftConfig, device
) -> None:
    """Refuse what crafting cannot use, with one line naming it."""
    if not surrogates:
        raise ConfigError("crafting needs at least one surrogate FaceModel")
    size = surrogates[0].space.size
    for name, imgs in identities.items():
        if imgs.ndim != 4 or imgs.shape[0] < 1 or tuple(imgs.shape[1:]) != (3, size, size):
            raise DataError(
                f"identity {name!r}: crafting photos must be n x 3 x {size} x {size} canonical "
                f"crops (n >= 1), got {tuple(imgs.shape)}; align them first"
            )
    if cfg.precision != "fp32" and torch.device(device).type != "cuda":
        raise ConfigError(f"precision={cfg.precision} needs a CUDA device; use precision=fp32")
    check_compile(cfg)


def _calibrated(
    identities: dict[str, torch.Tensor],
    models: list[FaceModel],
    nets: list[torch.nn.Module],
    cfg: CraftConfig,
    device: torch.device,
    calibration: Calibration | None,
) -> Calibration:
    """The run's calibration on ``device`` (measured on ``identities`` when not given)."""
    calib = (calibration or calibrate(identities, models, nets, cfg, device)).to(device)
    missing = [n for n in identities if n not in calib.names]
    if missing:
        raise NumericalError(  # calibrate() leaves such identities out
            f"identity {missing[0]!r}: its crafting photos give non-finite embeddings"
        )
    return calib


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


def craft_batch(
    units: dict[str, torch.Tensor],
    surrogates: list[FaceModel],
    cfg: CraftConfig,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    calibration: Calibration | None = None,
    on_step: OnStep | None = None,
) -> list[Crafted]:
    """Craft one perturbation per unit (name -> its n x 3 x S x S crafting photos), all in one
    batched loop, in ``units`` order; nothing is saved.

    ``calibration`` is the run's (its names must include every unit); without it, it is
    measured on ``units``. ``on_step(iterations_done, perturbations)`` is called after every
    iteration (e.g. to time the loop or check quality on the fly; it may raise to stop).
    """
    check_inputs(units, surrogates, cfg, device)
    device = torch.device(device)
    models, nets = ready(surrogates, cfg, device)
    calib = _calibrated(units, models, nets, cfg, device, calibration)
    row_of = {name: i for i, name in enumerate(calib.names)}
    return craft_chunk(
        list(units),
        list(units.values()),
        models,
        cfg,
        device=device,
        seed=seed,
        bar=_Silent(),
        nets=nets,
        calib=calib,
        identity_rows=[row_of[name] for name in units],
        on_step=on_step,
    )


def _veil(
    protector: str,
    cfg: CraftConfig,
    key: CraftKey,
    name: str,
    hashes: list[str],
    got: list[Crafted],
    per_image: bool,
) -> Veil:
    """An identity's veil from its finished unit(s)."""
    stats = (
        {
            "seconds": round(sum(p.stats["seconds"] for p in got), 3),
            "per_image": [p.veil_stats() for p in got],
            "convergence": merge([p.convergence for p in got]).to_dict(),
        }
        if per_image
        else got[0].veil_stats()
    )
    return Veil(
        veil=torch.stack([p.veil for p in got]) if per_image else got[0].veil,
        alpha=cfg.alpha,
        protector=protector,
        identity=name,
        config=key.config,
        surrogates=key.surrogates,
        image_sha256=hashes,
        clip=cfg.clip,
        stats=stats,
        seed=key.seed,
    )


def _units(identities: dict[str, torch.Tensor], todo: list[str], per_image: bool) -> list[Unit]:
    """The perturbations to craft: one per identity, or one per photo (``per_image``)."""
    return [
        (f"{name}/{i:04d}" if per_image else name, name, imgs[i : i + 1] if per_image else imgs)
        for name in todo
        for i in (range(len(identities[name])) if per_image else [0])
        for imgs in [identities[name]]
    ]


def craft_many(
    protector: str,
    cfg: CraftConfig,
    identities: dict[str, torch.Tensor],
    surrogates: list[FaceModel],
    *,
    per_image: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    on_done: Callable[[str, Veil], None] | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Veil]:
    """Craft a veil for every identity, ``cfg.batch_size`` units per batched loop.

    ``calibration`` is the run's (:func:`calibrate` over every identity of the run); without it,
    it is measured on ``identities``.

    With ``out_dir``, an identity whose ``.veil`` file already exists there and was crafted from
    the same photos, config and surrogates is loaded instead of crafted (resume), and each new
    veil is written as soon as its batch finishes. ``per_image`` crafts one perturbation per
    photo (AVIH); the identity's veil then holds all of them.
    """
    check_inputs(identities, surrogates, cfg, device)
    device = torch.device(device)
    models, nets = ready(surrogates, cfg, device)
    hashes = {name: image_sha256(imgs) for name, imgs in identities.items()}
    # The surrogates' scales, from every identity of the run (not per batch, so a veil does
    # not depend on its batch-mates); a resumed veil must have been crafted with the same.
    calib = _calibrated(identities, models, nets, cfg, device, calibration)
    # Only balanced or converging veils depend on the calibration (the fixed schedule with
    # balance=none does not), so only they must have been crafted with the same one.
    coupled = cfg.balance != "none" or cfg.until == "converged"
    key = CraftKey(
        protector,
        cfg.to_dict(),
        describe_surrogates(surrogates),
        seed,
        calib.to_dict(models) if coupled else None,
    )
    results: dict[str, Veil] = {}
    for name in identities:
        old = key.resumed(out_dir, name, hashes[name]) if out_dir is not None else None
        if old is not None:
            results[name] = old
    todo = [name for name in identities if name not in results]
    units = _units(identities, todo, per_image)
    chunks = [units[i : i + cfg.batch_size] for i in range(0, len(units), cfg.batch_size)]
    row_of = {name: i for i, name in enumerate(calib.names)}
    parts: dict[str, list[Crafted]] = {name: [] for name in todo}
    needed = {name: len(identities[name]) if per_image else 1 for name in todo}
    with tqdm(
        total=len(chunks) * cfg.cap,
        disable=not progress_enabled(progress),
        desc=f"{protector}: {len(todo)} to craft, {len(results)} resumed",
        unit="it",
    ) as bar:
        for chunk in chunks:
            crafted = _craft(chunk, models, cfg, device, seed, bar, nets, calib, row_of)
            for (_, name, _), c in zip(chunk, crafted, strict=True):
                parts[name].append(c)
                if len(parts[name]) < needed[name]:
                    continue
                veil = _veil(protector, cfg, key, name, hashes[name], parts.pop(name), per_image)
                if out_dir is not None:
                    save_veil(veil_path(out_dir, name), veil)
                if on_done is not None:
                    on_done(name, veil)
                results[name] = veil
    return {name: results[name] for name in identities}


def _craft(
    chunk: list[Unit],
    models: list[FaceModel],
    cfg: CraftConfig,
    device: torch.device,
    seed: int,
    bar: Bar,
    nets: list[torch.nn.Module],
    calib: Calibration,
    row_of: dict[str, int],
) -> list[Crafted]:
    return craft_chunk(
        [u[0] for u in chunk],
        [u[2] for u in chunk],
        models,
        cfg,
        device=device,
        seed=seed,
        bar=bar,
        nets=nets,
        calib=calib,
        identity_rows=[row_of[u[1]] for u in chunk],
    )
