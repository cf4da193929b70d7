"""Choosing the torch device: one helper below every stage that needs one."""

from __future__ import annotations

import torch

from veilbench.errors import ConfigError


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU; asking for CUDA without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use cpu/auto")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise ConfigError(f"unknown device {requested!r}; use auto, cpu or cuda[:N]") from None
