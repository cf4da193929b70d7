"""Built-in protectors: the person-specific veil and its baselines."""

from __future__ import annotations

from veilbench import hookimpl
from veilbench.lazy import factory


@hookimpl
def register_protectors(register):
    register(
        "veil",
        factory("veilbench.protectors.veil:VeilProtector"),
        description="person-specific veil (the paper's Algorithm 1)",
        config="veilbench.protectors.veil:VeilConfig",
    )
    register(
        "vuap",
        factory("veilbench.protectors.baselines:VUAPProtector"),
        description="V-UAP baseline (eq. 15): per-image feature distance, no block variance",
        config="veilbench.protectors.baselines:VUAPConfig",
    )
    register(
        "avih",
        factory("veilbench.protectors.baselines:AVIHProtector"),
        description="AVIH-style per-image protection (cost grows with the number of images)",
        config="veilbench.protectors.baselines:AVIHConfig",
    )
    register(
        "none",
        factory("veilbench.protectors.baselines:NoneProtector"),
        description="no protection (clean baseline)",
    )
