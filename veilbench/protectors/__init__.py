"""Protectors: craft a protection per identity, apply it to photos, recover the originals.

Every protector follows :class:`~veilbench.protectors.contract.Protector`: ``craft`` returns one
:class:`~veilbench.veilfile.Veil` per identity, ``apply`` blends it into photos, ``recover``
undoes the blend; :func:`traits` reads what a protector declares (per-image, secret,
recoverable). Constructors take keyword hyper-parameters (``VeilProtector(mu_var=10)``) and
reject unknown keys.
"""

from __future__ import annotations

from veilbench.protectors.baselines import (
    AVIHConfig,
    AVIHProtector,
    NoneProtector,
    VUAPConfig,
    VUAPProtector,
)
from veilbench.protectors.contract import Protector, Traits, traits
from veilbench.protectors.engine import CraftConfig, craft_many, make_config
from veilbench.protectors.veil import VeilConfig, VeilProtector

__all__ = [
    "AVIHConfig",
    "AVIHProtector",
    "CraftConfig",
    "NoneProtector",
    "Protector",
    "Traits",
    "VUAPConfig",
    "VUAPProtector",
    "VeilConfig",
    "VeilProtector",
    "craft_many",
    "make_config",
    "traits",
]
