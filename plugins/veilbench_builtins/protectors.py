"""Built-in protectors: the person-specific veil and its baselines."""

from __future__ import annotations

from veilbench import hookimpl


def _lazy(module: str, cls: str):
    def factory(**params):
        import importlib

        return getattr(importlib.import_module(module), cls)(**params)

    factory.__name__ = cls
    return factory


@hookimpl
def register_protectors(register):
    register(
        "veil",
        _lazy("veilbench.protectors.veil", "VeilProtector"),
        per_image=False,
        description="person-specific veil (the paper's Algorithm 1)",
        config="veilbench.protectors.veil:VeilConfig",
    )
    register(
        "vuap",
        _lazy("veilbench.protectors.baselines", "VUAPProtector"),
        per_image=False,
        description="V-UAP baseline (eq. 15): per-image feature distance, no block variance",
        config="veilbench.protectors.baselines:VUAPConfig",
    )
    register(
        "avih",
        _lazy("veilbench.protectors.baselines", "AVIHProtector"),
        per_image=True,
        description="AVIH-style per-image protection (cost grows with the number of images)",
        config="veilbench.protectors.baselines:AVIHConfig",
    )
    register(
        "none",
        _lazy("veilbench.protectors.baselines", "NoneProtector"),
        per_image=False,
        description="no protection (clean baseline)",
    )
