"""Face-recognition architectures built from users' checkpoints (or random, for training).

No pretrained weights for these architectures ship on a package registry, so a
:class:`~veilbench.models.base.FaceModel` comes either from a checkpoint the user has
(insightface ``arcface_torch`` backbones, or veilbench's own training output) or with random
weights as the starting point of ``veilbench train``.

Architectures: ``iresnet18/34/50/100`` and ``mobilefacenet`` (insightface ``arcface_torch`` key
names), ``resnet50`` / ``seresnet50`` (timm trunk + face neck) and ``inception_resnet_v1``
(facenet-pytorch key names).

Checkpoint formats read by :func:`load_checkpoint`:

- a plain state dict (``arcface_torch``'s ``backbone.pth``, facenet-pytorch's ``.pt``; ``module.``
  and ``backbone.`` prefixes are stripped);
- a dict holding one under ``state_dict_backbone`` (``arcface_torch`` resume files),
  ``state_dict`` or ``model``;
- veilbench's own: ``{"format": CHECKPOINT_FORMAT, "state_dict": ..., "card": ModelCard dict
  plus a "training" record}``.
"""

from __future__ import annotations

import functools
import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from veilbench.errors import WeightsError
from veilbench.models.architectures import (  # noqa: F401 (re-exported)
    ARCHITECTURES,
    FACENET_PYTORCH_INPUT,
    INSIGHTFACE_INPUT,
    Architecture,
    default_card,
    get_architecture,
)
from veilbench.models.base import FaceModel, FaceSpace, ModelCard
from veilbench.weights import sha256_file

#: Marks a checkpoint written by ``veilbench train``.
CHECKPOINT_FORMAT = "veilbench-checkpoint-v1"


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``module.`` (DataParallel/DDP) and ``backbone.`` prefixes shared by every key."""
    changed = True
    while changed and state:
        changed = False
        for prefix in ("module.", "backbone."):
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Read a .pth/.pt file: (state dict with prefixes stripped, model card dict or None)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist; check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"checkpoint {path} holds more than tensors (a whole pickled model?), which is not "
            "loaded for safety; re-save it with torch.save(model.state_dict(), path)"
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise WeightsError(
            f"checkpoint {path} cannot be read ({exc}); the file is truncated or not a torch "
            "checkpoint: copy it again"
        ) from exc
    card = None
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        state, card = obj["state_dict"], obj["card"]
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        nested = [
            k
            for k in ("state_dict_backbone", "state_dict", "model")
            if isinstance(obj, dict) and isinstance(obj.get(k), dict)
        ]
        if not nested:
            raise WeightsError(
                f"checkpoint {path} holds no state dict (found {type(obj).__name__}"
                + (f" with keys {sorted(obj)[:8]}" if isinstance(obj, dict) else "")
                + "); save the backbone with torch.save(backbone.state_dict(), path)"
            )
        state = obj[nested[0]]
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(
            f"checkpoint {path} has non-tensor entries in its state dict; save the backbone "
            "with torch.save(backbone.state_dict(), path)"
        )
    return _strip_prefixes(dict(state)), card


@functools.cache
def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of ``arch``'s state dict, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        module = ARCHITECTURES[arch].build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _relevant(state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """``state`` without the keys ``arch``'s upstream format holds outside the embedder."""
    ignore = ARCHITECTURES[arch].ignore_prefixes
    return {k: v for k, v in state.items() if not k.startswith(ignore)} if ignore else state


def _is_counter(key: str) -> bool:
    # BatchNorm's step counter: unused in eval, absent from checkpoints saved by old torch.
    return key.endswith("num_batches_tracked")


def _guess_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """The registered architecture whose keys and shapes ``state`` matches, if any."""
    for name in ARCHITECTURES:
        shapes = {k: tuple(v.shape) for k, v in _relevant(state, name).items()}
        expected = _expected_shapes(name)
        if all(k in expected for k in shapes) and all(
            shapes.get(k) == v for k, v in expected.items() if not _is_counter(k)
        ):
            return name
    return None


def _examples(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def load_strict(
    backbone: nn.Module, state: dict[str, torch.Tensor], arch: str, source: str | os.PathLike
) -> None:
    """Load ``state`` into ``backbone`` exactly, or raise a WeightsError saying what differs.

    Only keys the upstream format keeps outside the embedder (e.g. facenet-pytorch's
    classifier) and BatchNorm step counters may be absent or extra.
    """
    state = _relevant(state, arch)
    expected = backbone.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not _is_counter(k))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys: {_examples(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_examples(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches (checkpoint vs model): {_examples(mismatched)}")
        guess = _guess_architecture(state)
        hint = (
            f"its keys match architecture {guess!r}: use that one"
            if guess
            else f"pass a {get_architecture(arch).upstream}"
        )
        raise WeightsError(
            f"checkpoint {source} does not fit architecture {arch!r}: "
            + "; ".join(problems)
            + f"; {hint}"
        )
    backbone.load_state_dict(state, strict=False)  # everything but counters checked above


def create_architecture(
    arch: str,
    checkpoint: str | os.PathLike | None = None,
    space: FaceSpace | None = None,
    name: str | None = None,
) -> FaceModel:
    """A FaceModel of ``arch``: random weights, or loaded strictly from ``checkpoint``.

    ``name`` overrides the card's name (default: the name stored in a veilbench checkpoint,
    else ``arch`` or ``arch:<checkpoint stem>``). The model is returned in eval mode.
    """
    a = get_architecture(arch)
    backbone = a.build()
    card = default_card(arch)
    if checkpoint is not None:
        path = Path(checkpoint)
        state, stored = load_checkpoint(path)
        if stored is not None and stored.get("architecture") != arch:
            raise WeightsError(
                f"checkpoint {path} was trained as {stored.get('architecture')!r}, not {arch!r}; "
                f"create it with architecture {stored.get('architecture')!r}"
            )
        load_strict(backbone, state, arch, path)
        if stored is not None:
            card = ModelCard.from_dict(stored)
        else:
            card.name = f"{arch}:{path.stem}"
            card.licence = "unknown (user checkpoint)"
            card.source = f"user checkpoint {path} ({a.upstream})"
            card.pretrained = True
        card.weights = [{"name": path.name, "sha256": sha256_file(path), "sources": [str(path)]}]
    if name is not None:
        card.name = name
    return FaceModel(backbone, card, space).eval()
