"""The executor interface and the failure isolation both executors share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from veilbench.models.base import FaceModel
from veilbench.veilfile import Veil

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class CraftOutcome:
    """Veils of the identities that could be crafted and, by name, the ones that could not."""

    veils: dict[str, Veil] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # identity -> reason


class Executor(Protocol):
    """Runs a run's independent work. ``local`` and ``ray`` give the same results."""

    name: str
    #: Tasks that run at once (1 for the local executor): how many shards to cut work into.
    slots: int

    def craft(
        self,
        protector: Any,
        surrogates: list[FaceModel],
        inputs: dict[str, torch.Tensor],
        *,
        device: torch.device,
        seed: int,
        veil_dir: Path | None,
        progress: bool,
    ) -> CraftOutcome:
        """Craft every identity's veil (resuming from ``veil_dir``); failures are named."""
        ...

    def map(self, fn: Callable[[Any, T], R], items: Iterable[T], shared: Any = None) -> list[R]:
        """``[fn(shared, item) for item in items]``, possibly in parallel; order kept."""
        ...

    def map_batches(
        self, fn: Callable[[Any, list[T]], R], items: list[T], shared: Any, batch_size: int
    ) -> list[R]:
        """``fn(shared, batch)`` over batches of ``items`` (a stream: Ray Data on Ray)."""
        ...

    def close(self) -> None: ...


def run_calibration(
    protector: Any, surrogates: list[FaceModel], inputs: dict[str, torch.Tensor], device: Any
) -> dict[str, Any]:
    """Keyword arguments for every ``craft`` call of a run: what the protector measures once
    over all of the run's identities (its optional ``calibrate``), so a veil does not depend
    on how identities are chunked, on the executor, or on a failed neighbour."""
    calibrate = getattr(protector, "calibrate", None)
    if calibrate is None:
        return {}
    return {"calibration": calibrate(inputs, surrogates, device=device)}


def craft_isolating_failures(
    craft: Callable[[dict[str, torch.Tensor]], dict[str, Veil]],
    inputs: dict[str, torch.Tensor],
    is_failure: Callable[[BaseException], bool],
) -> CraftOutcome:
    """Craft ``inputs`` in one call; if it fails, craft each identity alone to name the culprits.

    Units never influence each other (each has its own seed and loss), so crafting an identity
    alone gives the veil it gets in a batch; only the identities that fail alone are reported.
    """
    outcome = CraftOutcome()
    try:
        outcome.veils.update(craft(inputs))
        return outcome
    except BaseException as exc:
        if not is_failure(exc) or len(inputs) == 1:
            if not is_failure(exc):
                raise
            outcome.failures[next(iter(inputs))] = failure_reason(exc)
            return outcome
    for name, images in inputs.items():
        try:
            outcome.veils.update(craft({name: images}))
        except BaseException as exc:
            if not is_failure(exc):
                raise
            outcome.failures[name] = failure_reason(exc)
    return outcome


def failure_reason(exc: BaseException) -> str:
    """One line: the original exception's type and message (unwrapped from Ray's wrapper)."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]
