"""Test helpers: a tiny RANDOM-WEIGHT face model for plumbing tests (never for behaviour)."""

from __future__ import annotations

import types

from veilbench import hookimpl
from veilbench.models.tiny import TinyRandomNet, tiny_random_model
from veilbench.plugins import Plugins

__all__ = ["TinyRandomNet", "plugins_with_tiny_models", "tiny_random_model"]


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
