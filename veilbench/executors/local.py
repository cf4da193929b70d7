"""The default executor: everything in this process, as a plain run always did."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch

from veilbench.errors import DataError, NumericalError
from veilbench.executors.base import CraftOutcome, craft_isolating_failures, run_calibration
from veilbench.models.base import FaceModel

T = TypeVar("T")
R = TypeVar("R")

#: What one identity's bad input raises (a broken photo, a non-finite gradient); anything else,
#: a wrong setting above all, fails the whole run as before.
IDENTITY_FAILURES = (DataError, NumericalError)


class LocalExecutor:
    name = "local"
    slots = 1

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
        shared = run_calibration(protector, surrogates, inputs, device)

        def craft(chunk: dict[str, torch.Tensor]) -> dict:
            return protector.craft(
                chunk,
                surrogates,
                device=device,
                seed=seed,
                out_dir=veil_dir,
                progress=progress,
                **shared,
            )

        return craft_isolating_failures(
            craft, inputs, lambda exc: isinstance(exc, IDENTITY_FAILURES)
        )

    def map(self, fn: Callable[[Any, T], R], items: Iterable[T], shared: Any = None) -> list[R]:
        return [fn(shared, item) for item in items]

    def map_batches(
        self, fn: Callable[[Any, list[T]], R], items: list[T], shared: Any, batch_size: int
    ) -> list[R]:
        return [fn(shared, list(items))]  # one batch: the function parallelises its own I/O

    def close(self) -> None:
        pass
