"""The model contract every protector and evaluator relies on.

veilbench works in one **canonical face-crop space**: RGB float images in [0, 255], shape
``N x 3 x S x S``, aligned to the ArcFace 5-point template (insightface's ``norm_crop``). The
paper's 112 x 112 aligned crop sits in the centre; a margin around it (16 px by default, so
S = 144) lets models trained on wider chips (dlib, FaceNet) see what they were trained on.

A :class:`FaceModel` takes canonical crops and returns L2-normalised embeddings. It maps the
canonical crop to its own input (crop box, size, channel order, normalisation) *inside*
``forward``, with a fixed differentiable warp, so gradients flow back to canonical pixels and a
single veil image feeds every model.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from veilbench.errors import ModelInputError

# The records live in the torch-free card module; imported from here as before.
from veilbench.models.card import (
    ARCFACE_TEMPLATE_112,
    SPHEREFACE_CROP_96X112,
    FaceSpace,
    InputSpec,
    ModelCard,
)

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "SPHEREFACE_CROP_96X112",
    "FaceModel",
    "FaceSpace",
    "InputSpec",
    "ModelCard",
    "flip_concat",
    "warp_grid",
]


def warp_grid(
    space: FaceSpace, spec: InputSpec, device: torch.device | None = None
) -> torch.Tensor | None:
    """The sampling grid taking a canonical crop to the model's input, or None if identity."""
    x0, y0, x1, y1 = space.box_to_pixels(spec.crop)
    S = space.size
    h, w = spec.shape
    if (x0, y0, x1, y1) == (0.0, 0.0, float(S), float(S)) and h == w == S:
        return None
    # Centres of output pixels, in canonical pixel coordinates, then in grid_sample's [-1, 1]
    # (align_corners=False: -1 is the left edge of pixel 0).
    tx = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
    ty = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
    xs = (x0 + tx * (x1 - x0)) / S * 2 - 1
    ys = (y0 + ty * (y1 - y0)) / S * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


class FaceModel(nn.Module):
    """Canonical crops (N x 3 x S x S, RGB, [0, 255]) -> L2-normalised embeddings (N x D).

    ``backbone`` receives the model's own input (already warped, reordered and normalised) and
    returns raw embeddings. Subclasses or factories only supply the backbone and the card.
    """

    def __init__(self, backbone: nn.Module, card: ModelCard, space: FaceSpace | None = None):
        super().__init__()
        self.backbone = backbone
        self.card = card
        self.space = space or FaceSpace()
        spec = card.input
        grid = warp_grid(self.space, spec)
        self.register_buffer("grid", grid, persistent=False)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.bgr = spec.channels.upper() == "BGR"

    @property
    def name(self) -> str:
        return self.card.name

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Canonical crop -> the backbone's input, differentiably."""
        S = self.space.size
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != S or x.shape[3] != S:
            raise ModelInputError(
                f"model {self.name} takes canonical crops of shape N x 3 x {S} x {S}, "
                f"got {tuple(x.shape)}"
            )
        if self.grid is not None:
            grid = self.grid.to(x.dtype).expand(x.shape[0], -1, -1, -1)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.bgr:
            x = x.flip(1)
        return (x * (self.card.input.scale / 255.0) - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone(self.preprocess(x)).flatten(1), dim=1)


class FlipConcat(nn.Module):
    """A backbone's features of its input and of the mirrored input, concatenated.

    The mirror is taken of the model's own input (after the crop), as face-recognition
    authors evaluate (e.g. SphereFace, MobileFaceNet on LFW).
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.inner = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.inner(x).flatten(1), self.inner(x.flip(3)).flatten(1)], dim=1)


def flip_concat(model: FaceModel) -> FaceModel:
    """``model`` returning flip-concatenated embeddings (twice as long; ``card.flip`` True)."""
    card = replace(model.card, embedding_size=2 * model.card.embedding_size, flip=True)
    return FaceModel(FlipConcat(model.backbone), card, model.space).eval()
