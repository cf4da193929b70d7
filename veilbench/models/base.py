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

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from veilbench.errors import ModelInputError

#: insightface's 5-point ArcFace template for a 112 x 112 crop (eyes, nose tip, mouth corners).
ARCFACE_TEMPLATE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


@dataclass(frozen=True)
class FaceSpace:
    """The canonical crop: the ArcFace template scaled to ``template_size`` plus ``margin``."""

    #: Side of the ArcFace template inside the crop (112: the paper's aligned crop).
    template_size: int = 112
    #: Pixels around the template, for models trained on wider chips; S = template + 2 margin.
    margin: int = 16

    @property
    def size(self) -> int:
        return self.template_size + 2 * self.margin

    def landmarks(self) -> list[tuple[float, float]]:
        """Where the 5 template points lie in canonical pixels."""
        s = self.template_size / 112.0
        return [(x * s + self.margin, y * s + self.margin) for x, y in ARCFACE_TEMPLATE_112]

    def box_to_pixels(self, box: tuple[float, float, float, float]) -> tuple[float, ...]:
        """A box in 112-template coordinates, in canonical pixels."""
        s = self.template_size / 112.0
        return tuple(v * s + self.margin for v in box)


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input; all of it is applied inside ``FaceModel.forward``.

    ``crop`` is the square the model sees, as (x0, y0, x1, y1) in 112-pixel ArcFace-template
    coordinates: ``(0, 0, 112, 112)`` is the plain ArcFace crop; a wider box means a wider chip.
    The model input is ``(x / 255 * scale - mean) / std`` after channel reordering, i.e. with
    ``scale=255, mean=127.5, std=128`` the insightface convention.
    """

    #: Side of the square the backbone receives, in pixels.
    size: int = 112
    #: The square the model sees, in 112-pixel ArcFace-template coordinates.
    crop: tuple[float, float, float, float] = (0.0, 0.0, 112.0, 112.0)
    #: "RGB" or "BGR": the channel order the backbone expects.
    channels: str = "RGB"
    #: Pixels are first mapped to [0, scale].
    scale: float = 255.0
    #: Per-channel mean subtracted after scaling (in the backbone's channel order).
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    #: Per-channel divisor applied after the mean.
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ModelCard:
    """What a registered model is: goes into ``veilbench list models`` and every result file."""

    #: The registered name.
    name: str
    #: The network, in words (e.g. "iresnet50").
    architecture: str
    #: Length of the embeddings the model returns.
    embedding_size: int
    #: How the canonical crop becomes the backbone's input (applied by FaceModel).
    input: InputSpec = field(default_factory=InputSpec)
    #: Licence of the weights.
    licence: str = "unknown"
    #: Where the weights or architecture come from.
    source: str = ""
    #: The paper to cite.
    paper: str = ""
    #: True only for trained weights; a random-init model says False (and registers weights=[]).
    pretrained: bool = False
    #: The weight files: ``[{"name", "sha256", "sources"}]``.
    weights: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        return d


def warp_grid(
    space: FaceSpace, spec: InputSpec, device: torch.device | None = None
) -> torch.Tensor | None:
    """The sampling grid taking a canonical crop to the model's input, or None if identity."""
    x0, y0, x1, y1 = space.box_to_pixels(spec.crop)
    S = space.size
    if (x0, y0, x1, y1) == (0.0, 0.0, float(S), float(S)) and spec.size == S:
        return None
    n = spec.size
    # Centres of output pixels, in canonical pixel coordinates, then in grid_sample's [-1, 1]
    # (align_corners=False: -1 is the left edge of pixel 0).
    ts = (torch.arange(n, dtype=torch.float32, device=device) + 0.5) / n
    xs = (x0 + ts * (x1 - x0)) / S * 2 - 1
    ys = (y0 + ts * (y1 - y0)) / S * 2 - 1
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
