"""Where a run's independent work runs: in this process (``local``) or on a Ray cluster (``ray``).

An executor crafts veils for a set of identities and maps a function over independent items
(evaluation shards); everything else in a run stays on the driver. Both executors return the
same :class:`CraftOutcome`, so the runner never branches on which one it has. The Ray executor
is the optional extra ``veilbench[ray]``: nothing here imports ray until it is asked for.
"""

from __future__ import annotations

from veilbench.errors import ConfigError
from veilbench.executors.base import CraftOutcome, Executor, craft_isolating_failures
from veilbench.executors.local import LocalExecutor

EXECUTORS = ("local", "ray")

__all__ = [
    "EXECUTORS",
    "CraftOutcome",
    "Executor",
    "LocalExecutor",
    "craft_isolating_failures",
    "get_executor",
]


def get_executor(name: str, address: str | None = None, device: str = "auto") -> Executor:
    """The executor called ``name``; ``address`` is the Ray cluster to join (None: local)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from veilbench.executors.ray import RayExecutor

        return RayExecutor(address, device=device)
    raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
