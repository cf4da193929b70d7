"""An example veilbench plugin: a posterize attack and a flat-grey-veil protector."""

from __future__ import annotations

import torch

from veilbench import hookimpl


def posterize(bits: float):
    """Keep ``bits`` bits per channel (8 = identity)."""
    step = 2 ** (8 - int(bits))

    def attack(x: torch.Tensor) -> torch.Tensor:
        return (x / step).floor() * step

    return attack


class GreyVeil:
    """A naive protector: the same flat grey veil for everyone (no model needed)."""

    name = "example_grey"
    per_image = False

    def __init__(self, alpha: float = 0.2, level: float = 128.0):
        self.alpha, self.level = alpha, level
        self.config = {"alpha": alpha, "level": level}

    def craft(self, identities, surrogates, **_):
        return {name: torch.full_like(images[0], self.level) for name, images in identities.items()}

    def apply(self, veil, images):
        return self.alpha * images + (1 - self.alpha) * veil.to(images.device)

    def recover(self, veil, protected, gaussian_sigma: float = 0.0):
        return (protected - (1 - self.alpha) * veil.to(protected.device)) / self.alpha


@hookimpl
def register_attacks(register):
    register(
        "posterize",
        posterize,
        parameter="bits per channel",
        sweep=[8, 5, 3, 2, 1],
        description="colour quantisation",
    )


@hookimpl
def register_protectors(register):
    register("example_grey", GreyVeil, per_image=False, description="flat grey veil (example)")
