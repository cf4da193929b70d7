"""The surrogates as the crafting loop calls them: on the device, channels-last or compiled as
configured, under autocast when asked, and described (name, weight hash) for provenance."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch

from veilbench.errors import ConfigError
from veilbench.models.base import FaceModel
from veilbench.protectors.engine.config import CraftConfig


def describe_surrogates(models: list[FaceModel]) -> list[dict]:
    """Name and weight sha256 of each surrogate (a parameter hash when it has no weight file)."""
    out = []
    for m in models:
        entry: dict[str, Any] = {"name": m.name}
        weights = [{"name": w.get("name"), "sha256": w.get("sha256")} for w in m.card.weights]
        if weights:
            entry["weights"] = weights
        else:  # e.g. a random-weight test model: hash what it computes with
            digest = hashlib.sha256()
            for key, tensor in sorted(m.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy())
            entry["params_sha256"] = digest.hexdigest()
        out.append(entry)
    return out


def embed_all(
    models: Sequence[torch.nn.Module], x: torch.Tensor, precision: str
) -> list[torch.Tensor]:
    """Every surrogate's embeddings of ``x`` (float32), under autocast when asked."""
    if precision == "fp32":
        return [m(x) for m in models]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type="cuda", dtype=dtype):
        return [m(x).float() for m in models]


def _compile_available() -> bool:
    if not callable(getattr(torch, "compile", None)):
        return False
    try:
        from torch import _dynamo

        return bool(_dynamo.is_dynamo_supported())
    except Exception:  # an unusual build or platform: treat as unavailable
        return False


def check_compile(cfg: CraftConfig) -> None:
    if cfg.compile_models and not _compile_available():
        raise ConfigError(
            f"compile_models=true needs torch.compile, which this PyTorch ({torch.__version__}) "
            "does not support on this Python/platform; use compile_models=false"
        )


def ready(
    surrogates: Sequence[FaceModel], cfg: CraftConfig, device: torch.device
) -> tuple[list[FaceModel], list[torch.nn.Module]]:
    """The surrogates on ``device`` in eval mode, and what the crafting loop calls for them."""
    models = [m.to(device).eval() for m in surrogates]
    return models, surrogate_nets(models, cfg)


def surrogate_nets(models: Sequence[FaceModel], cfg: CraftConfig) -> list[torch.nn.Module]:
    """What the loop calls: the surrogates, channels-last and/or compiled as ``cfg`` asks."""
    nets: list[torch.nn.Module] = []
    for m in models:
        if cfg.channels_last:
            m.to(memory_format=torch.channels_last)  # in place; a no-op the second time
        nets.append(torch.compile(m) if cfg.compile_models else m)
    return nets
