"""The implementations (imported only when veilbench creates one of them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from veilbench.data.datasets import FaceDataset, image_folder
from veilbench.errors import VeilbenchError
from veilbench.models.base import FaceModel, FaceSpace, InputSpec, ModelCard
from veilbench.protectors.contract import make_config
from veilbench.veilfile import Veil, apply_veil, recover_images
from veilbench.weights import cache_dir


def random_card() -> ModelCard:
    return ModelCard(
        name="testpkg_random",
        architecture="linear-on-pooled",
        embedding_size=8,
        input=InputSpec(size=32, crop=(0.0, 0.0, 112.0, 112.0)),
        pretrained=False,
    )


def random_model(space: FaceSpace | None = None, **_) -> FaceModel:
    torch.manual_seed(3)
    backbone = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 8))
    return FaceModel(backbone, random_card(), space)


@dataclass
class StripesConfig:
    alpha: float = 0.3
    period: int = 8

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "period": self.period}


class Stripes:
    name = "testpkg_stripes"

    def __init__(self, **params) -> None:
        self.config = make_config(StripesConfig, params)

    def craft(self, identities, surrogates, *, device="cpu", seed=0, out_dir=None, progress=True):
        veils = {}
        for i, (identity, images) in enumerate(sorted(identities.items())):
            size = images.shape[-1]
            rows = (torch.arange(size) // self.config.period + i) % 2 * 255.0
            veil = rows.view(1, size, 1).expand(3, size, size).clone()
            veils[identity] = Veil(veil, self.config.alpha, self.name, identity=identity)
        return veils

    def apply(self, veil, images):
        return apply_veil(veil, images)

    def recover(self, veil, protected, gaussian_sigma=0.0):
        return recover_images(veil, protected, gaussian_sigma)


class Mosaic:
    name = "testpkg_mosaic"
    per_image = True
    secret = False
    recoverable = False
    config: dict = {}

    def __init__(self, **params) -> None:
        if params:
            raise VeilbenchError(f"testpkg_mosaic takes no parameters, got {sorted(params)}")

    def craft(self, identities, surrogates, **_):
        return {identity: None for identity in identities}

    def apply(self, veil, images):
        small = nn.functional.avg_pool2d(images, 16)
        return nn.functional.interpolate(small, size=images.shape[-2:], mode="nearest")

    def recover(self, veil, protected, gaussian_sigma=0.0):
        raise VeilbenchError("a mosaic cannot be undone")


def invert(share: float):
    def attack(x: torch.Tensor) -> torch.Tensor:
        return (1 - share) * x + share * (255.0 - x)

    return attack


def faces(**_) -> FaceDataset:
    root = cache_dir() / "testpkg-faces-v1"
    rng = np.random.default_rng(0)
    for person in range(4):
        base = rng.uniform(40, 220, 3)
        for photo in range(6 if person < 3 else 1):
            path = root / f"person_{person}" / f"{photo}.png"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                pixels = base + rng.normal(0, 20, (144, 144, 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return image_folder(root, name="testpkg_faces", alignment="none")
