"""The protect stage of a run: craft every probe's veil (resumably) and protect its photos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from veilbench.data.faces import EvalData
from veilbench.models.base import FaceModel
from veilbench.protectors.contract import traits

if TYPE_CHECKING:  # the runner passes its executor in: executors sit above this layer
    from veilbench.executors import Executor


def quantise(images: torch.Tensor) -> torch.Tensor:
    """What a PNG on disk holds: rounded to integers in [0, 255]."""
    return images.clamp(0, 255).round()


@dataclass
class ProtectedFaces:
    """One probe's photos after protection (as they would be saved: quantised)."""

    craft: torch.Tensor
    held_out: torch.Tensor
    craft_recovered: torch.Tensor | None  # None: the protector cannot be undone
    veil: Any  # the protector's secret (a Veil), None for protectors that store none

    def subset(self, name: str) -> torch.Tensor:
        return self.craft if name == "craft" else self.held_out


def craft_and_protect(
    protector: Any,
    surrogates: list[FaceModel],
    data: EvalData,
    *,
    device: torch.device,
    seed: int,
    veil_dir: Path,
    progress: bool = False,
    executor: Executor,
) -> tuple[dict[str, ProtectedFaces], dict[str, str]]:
    """Craft every probe's veil (finished veils in ``veil_dir`` are reused) and apply it.

    Returns the protected photos of every identity that could be crafted and, by identity,
    why the others could not (see :class:`~veilbench.executors.CraftOutcome`).
    """
    declared = traits(protector)
    per_image, recoverable = declared.per_image, declared.recoverable
    inputs = {}
    for p in data.probes:
        images = p.craft.tensor()
        if per_image:  # one perturbation per photo: the held-out photos need crafting too
            images = torch.cat([images, p.held_out.tensor()])
        inputs[p.identity] = images
    outcome = executor.craft(
        protector,
        surrogates,
        inputs,
        device=device,
        seed=seed,
        veil_dir=veil_dir,
        progress=progress,
    )
    veils = outcome.veils
    protected = {}
    for p in data.probes:
        if p.identity not in veils:
            continue
        veil = veils[p.identity]
        n = len(p.craft)
        if per_image:
            both = quantise(protector.apply(veil, inputs[p.identity]).cpu())
            craft, held = both[:n], both[n:]
            recovered = protector.recover(veil, both).cpu()[:n] if recoverable else None
        else:
            craft = quantise(protector.apply(veil, p.craft.tensor()).cpu())
            held = quantise(protector.apply(veil, p.held_out.tensor()).cpu())
            recovered = protector.recover(veil, craft).cpu() if recoverable else None
        protected[p.identity] = ProtectedFaces(
            craft, held, None if recovered is None else quantise(recovered), veil
        )
    return protected, outcome.failures
