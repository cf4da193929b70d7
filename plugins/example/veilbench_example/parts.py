"""The example plugin's implementations, written against veilbench's documented contracts."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from veilbench.attacks import blur
from veilbench.data.datasets import FaceDataset, image_folder
from veilbench.errors import DataError, VeilbenchError
from veilbench.models.base import FaceModel, FaceSpace, InputSpec, ModelCard
from veilbench.protectors.contract import make_config
from veilbench.veilfile import Veil, apply_veil, image_sha256, recover_images


def posterize(bits: float):
    """Keep ``bits`` bits per channel (8 = identity)."""
    step = 2 ** (8 - int(bits))

    def attack(x: torch.Tensor) -> torch.Tensor:
        return (x / step).floor() * step

    return attack


@dataclass
class GreyConfig:
    #: Share of the original photo in the protected one.
    alpha: float = 0.2
    #: Grey level of the veil (0-255).
    level: float = 128.0

    def to_dict(self) -> dict:
        return asdict(self)


class GreyVeil:
    """A naive protector: the same flat grey veil for everyone (no model needed)."""

    name = "example_grey"

    def __init__(self, **params) -> None:
        self.config = make_config(GreyConfig, params)  # ConfigError for unknown keys

    def craft(self, identities, surrogates, *, device="cpu", seed=0, out_dir=None, progress=True):
        return {
            name: Veil(
                veil=torch.full(images.shape[1:], float(self.config.level)),
                alpha=self.config.alpha,
                protector=self.name,
                identity=name,
                config=self.config.to_dict(),
                image_sha256=image_sha256(images),
            )
            for name, images in identities.items()
        }

    def apply(self, veil, images):
        return apply_veil(veil, images)

    def recover(self, veil, protected, gaussian_sigma=0.0):
        return recover_images(veil, protected, gaussian_sigma)


@dataclass
class BlurConfig:
    #: Standard deviation of the blur in canonical pixels.
    sigma: float = 6.0

    def to_dict(self) -> dict:
        return asdict(self)


class Blur:
    """Blur every photo: nothing to keep per person and no way back."""

    name = "example_blur"
    secret = False  # craft returns None per identity; apply gets None
    recoverable = False  # the runner never calls recover; no recovered figures

    def __init__(self, **params) -> None:
        self.config = make_config(BlurConfig, params)

    def craft(self, identities, surrogates, **_):
        return dict.fromkeys(identities)

    def apply(self, veil, images):
        return blur(self.config.sigma)(images)

    def recover(self, veil, protected, gaussian_sigma=0.0):
        raise VeilbenchError("a blur cannot be undone")


def thumbnail_card() -> ModelCard:
    """Everything veilbench needs to know about the model, without building it."""
    return ModelCard(
        name="example_thumbnail",
        architecture="grey thumbnail + random linear projection",
        embedding_size=32,
        # The plain 112 px ArcFace crop, shrunk to 24 px; pixels scaled to [-1, 1].
        # FaceModel does the crop, resize and normalisation; the backbone sees the result.
        input=InputSpec(
            size=24, crop=(0.0, 0.0, 112.0, 112.0), mean=(127.5,) * 3, std=(127.5,) * 3
        ),
        licence="n/a (random weights)",
        pretrained=False,  # with weights=[] at registration: nothing to fetch
    )


def thumbnail_model(space: FaceSpace | None = None, **_) -> FaceModel:
    generator = torch.Generator().manual_seed(0)
    projection = nn.Linear(24 * 24, 32, bias=False)
    with torch.no_grad():
        projection.weight.copy_(torch.randn(32, 24 * 24, generator=generator))
    backbone = nn.Sequential(_Grey(), nn.Flatten(), projection)
    return FaceModel(backbone, thumbnail_card(), space).eval()


class _Grey(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def example_faces(**_) -> FaceDataset:
    """``$EXAMPLE_FACES`` as an ``<identity>/<photo>`` folder; photos go through YuNet."""
    root = os.environ.get("EXAMPLE_FACES")
    if not root:
        raise DataError("dataset example_faces reads $EXAMPLE_FACES: set it to a photo folder")
    return image_folder(root, name="example_faces", alignment="yunet")
