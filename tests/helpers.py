"""Test helpers: a tiny RANDOM-WEIGHT face model for plumbing tests (never for behaviour)."""

from __future__ import annotations

import types

import torch
from torch import nn

from veilbench import hookimpl
from veilbench.models.base import FaceModel, FaceSpace, InputSpec, ModelCard
from veilbench.plugins import Plugins


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


def tiny_random_model(space: FaceSpace | None = None, seed: int = 0, **_) -> FaceModel:
    card = ModelCard(
        name=f"tiny_random_{seed}",
        architecture="tiny-random-plumbing",
        embedding_size=16,
        input=InputSpec(size=56),
    )
    return FaceModel(TinyRandomNet(seed=seed), card, space)


def plugins_with_tiny_models() -> Plugins:
    """The installed plugins plus two random-weight models (plumbing tests only)."""
    module = types.ModuleType("tiny_models")

    @hookimpl
    def register_models(register):
        register(
            "tiny_random_a",
            lambda space=None, **kw: tiny_random_model(space, seed=1),
            weights=[],
            description="random weights, plumbing tests only",
        )
        register(
            "tiny_random_b",
            lambda space=None, **kw: tiny_random_model(space, seed=2),
            weights=[],
            description="random weights, plumbing tests only",
        )

    module.register_models = register_models
    return Plugins(modules={"tiny-models": module})
