"""A tiny face model with RANDOM weights, for plumbing tests only (its embeddings mean nothing).

Used by veilbench's own tests and by :mod:`veilbench.testing` for plugin authors' tests.
"""

from __future__ import annotations

import torch
from torch import nn

from veilbench.models.base import FaceModel, FaceSpace, InputSpec, ModelCard


class TinyRandomNet(nn.Module):
    """Random-weight conv net: plumbing only, its embeddings mean nothing."""

    def __init__(self, dim: int = 16, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=4),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(64, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def tiny_random_card(seed: int = 0) -> ModelCard:
    """The card of :func:`tiny_random_model`: no weight files, not pretrained."""
    return ModelCard(
        name=f"tiny_random_{seed}",
        architecture="tiny-random-plumbing",
        embedding_size=16,
        input=InputSpec(size=56),
        licence="n/a (random weights)",
        pretrained=False,
    )


def tiny_random_model(space: FaceSpace | None = None, seed: int = 0, **_) -> FaceModel:
    """A :class:`FaceModel` around :class:`TinyRandomNet` (random weights, plumbing only)."""
    return FaceModel(TinyRandomNet(seed=seed), tiny_random_card(seed), space)
