"""Instantiating a run's models; with ``all``, unusable ones are skipped with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from veilbench.errors import ConfigError
from veilbench.models.base import FaceModel, FaceSpace
from veilbench.registry import Entry
from veilbench.weights import WeightsError, status


def load_models(
    entries: list[Entry],
    *,
    explicit: bool,
    space: FaceSpace,
    device: torch.device,
    checkpoints: dict[str, str] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[dict[str, FaceModel], list[dict[str, str]]]:
    """Frozen models in eval mode, and ``{"model", "reason"}`` for each one skipped.

    ``explicit`` (the user named the models) turns a missing checkpoint or weight file into an
    error instead of a skip.
    """
    checkpoints = checkpoints or {}
    models: dict[str, FaceModel] = {}
    skipped: list[dict[str, str]] = []
    for entry in entries:
        kwargs: dict[str, Any] = {"space": space}
        if entry.name in checkpoints:
            kwargs["path" if entry.name == "onnx" else "checkpoint"] = checkpoints[entry.name]
        elif entry.metadata.get("needs"):
            reason = f"needs --checkpoint {entry.name}=PATH (no pretrained weights reachable)"
            if explicit:
                raise ConfigError(f"model {entry.name} {reason}")
            skipped.append({"model": entry.name, "reason": reason})
            continue
        unavailable = [w.name for w in entry.metadata.get("weights", []) if not status(w).available]
        if unavailable:
            skipped.append({"model": entry.name, "reason": f"weights unavailable: {unavailable}"})
            continue
        try:
            log(f"loading model {entry.name}")
            model = entry.create(**kwargs).to(device).eval()
        except WeightsError as exc:
            if explicit:
                raise
            skipped.append({"model": entry.name, "reason": str(exc)})
            continue
        for p in model.parameters():
            p.requires_grad_(False)
        models[entry.name] = model
    return models, skipped
