"""Obfuscation: blur, pixelate, mask and k-same. No secret, no recovery, one strength each.

These are the classic de-identification baselines (FDeID's "traditional" family). They hide the
face from people and give nothing back to its owner; their threat model is the parrot attacker
(:mod:`veilbench.adversaries.parrot`), who obfuscates his own gallery the same way, and
purification. Each works on canonical crops (:class:`~veilbench.models.base.FaceSpace`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from veilbench.errors import ConfigError
from veilbench.models.base import FaceModel, FaceSpace
from veilbench.protectors.contract import make_config
from veilbench.protectors.pool import PoolConfig, PoolEmbeddings, PublicPool, pick_model
from veilbench.veilfile import Veil, gaussian_blur, image_sha256


class _Settings:
    """``to_dict`` for the obfuscations' config dataclasses (recorded in every results file)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FaceBlurConfig(_Settings):
    """Gaussian blur of the whole canonical crop."""

    #: Standard deviation in canonical pixels (the strength; 0 leaves the photo unchanged).
    sigma: float = 8.0

    def __post_init__(self) -> None:
        if self.sigma < 0:
            raise ConfigError(f"face_blur sigma must be >= 0, got {self.sigma}")


@dataclass
class PixelateConfig(_Settings):
    """Mean colour over square blocks (mosaic)."""

    #: Block side in canonical pixels (the strength; 1 leaves the photo unchanged).
    block: int = 8

    def __post_init__(self) -> None:
        if self.block < 1:
            raise ConfigError(f"pixelate block must be >= 1 pixel, got {self.block}")


@dataclass
class MaskConfig(_Settings):
    """A solid box over the face or the eye band, placed from the template's 5 landmarks."""

    #: "face" (forehead to chin, cheek to cheek) or "eyes" (the eye band).
    region: str = "face"
    #: Share of the box replaced by the solid colour (the strength; 1 = fully solid).
    opacity: float = 1.0
    #: The solid grey level, 0-255.
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.region not in ("face", "eyes"):
            raise ConfigError(f'mask region must be "face" or "eyes", got {self.region!r}')
        if not 0 <= self.opacity <= 1 or not 0 <= self.value <= 255:
            raise ConfigError("mask opacity must be in [0, 1] and value in [0, 255]")


@dataclass
class KSameConfig(PoolConfig):
    """k-same-pixel with a public pool: each photo becomes the mean of its k nearest pool faces."""

    #: Pool faces averaged per photo (the strength).
    k: int = 5
    #: The model whose embedding finds the nearest faces (a surrogate's name; "" = the first).
    model: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 1:
            raise ConfigError(f"ksame k must be >= 1, got {self.k}")


def canonical_space(size: int) -> FaceSpace:
    """The default canonical space when its size matches, else a crop with no margin."""
    default = FaceSpace()
    return default if default.size == size else FaceSpace(margin=0, template_size=size)


def mask_box(space: FaceSpace, region: str) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in canonical pixels of the face or eye-band box from the 5 landmarks."""
    (lx, ly), (rx, ry), _, (mlx, mly), (mrx, mry) = space.landmarks()
    eye_y, d = (ly + ry) / 2, rx - lx  # eye line and inter-ocular distance
    if region == "eyes":
        box = (lx - 0.5 * d, eye_y - 0.35 * d, rx + 0.5 * d, eye_y + 0.35 * d)
    else:  # forehead to chin, cheek to cheek
        box = (lx - 0.6 * d, eye_y - 0.9 * d, rx + 0.6 * d, (mly + mry) / 2 + 0.6 * d)
    s = space.size
    x0, y0, x1, y1 = (round(min(max(v, 0), s)) for v in box)
    return x0, y0, x1, y1


class ObfuscationProtector:
    """An image operation applied to every photo: no secret, nothing to craft, no recovery."""

    name: str = ""
    config_class: ClassVar[type] = FaceBlurConfig
    per_image = False
    secret = False
    recoverable = False
    threats: tuple[str, ...] = ("parrot", "purification")
    promise = "concealment"
    utility = "none"

    def __init__(self, **params: Any) -> None:
        self.config = make_config(self.config_class, params)

    def craft(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        out_dir: str | Path | None = None,
        progress: bool = True,
    ) -> dict[str, None]:
        """Nothing to craft or keep."""
        return {name: None for name in identities}

    def apply(self, veil: None, images: torch.Tensor) -> torch.Tensor:
        return self.obfuscate(images.float()).clamp(0, 255)

    def obfuscate(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def recover(self, veil: None, protected: torch.Tensor, gaussian_sigma: float = 0.0):
        raise ConfigError(f"protector {self.name} cannot be undone")


class FaceBlurProtector(ObfuscationProtector):
    name = "face_blur"
    config_class = FaceBlurConfig

    def obfuscate(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.config.sigma <= 0 else gaussian_blur(images, self.config.sigma)


class PixelateProtector(ObfuscationProtector):
    name = "pixelate"
    config_class = PixelateConfig

    def obfuscate(self, images: torch.Tensor) -> torch.Tensor:
        b = self.config.block
        if b <= 1:
            return images
        h, w = images.shape[-2:]
        small = F.interpolate(images, size=(-(-h // b), -(-w // b)), mode="area")
        return F.interpolate(small, size=(h, w), mode="nearest")


class MaskProtector(ObfuscationProtector):
    name = "mask"
    config_class = MaskConfig

    def obfuscate(self, images: torch.Tensor) -> torch.Tensor:
        x0, y0, x1, y1 = mask_box(canonical_space(images.shape[-1]), self.config.region)
        out = images.clone()
        box = out[..., y0:y1, x0:x1]
        out[..., y0:y1, x0:x1] = (1 - self.config.opacity) * box + self.config.opacity * (
            self.config.value
        )
        return out


class KSameProtector(ObfuscationProtector):
    """k-same-pixel (Newton et al., 2005) over a public pool, by one model's embedding.

    Each photo is replaced by the mean of the ``k`` pool photos nearest to it (cosine, by the
    chosen model): nothing of the photo survives but which pool faces it resembles. The model
    used is white-box for it. The per-photo means are kept as a :class:`Veil` (``alpha = 1``),
    as nothing else could give them back to :meth:`apply`.
    """

    name = "ksame"
    config_class = KSameConfig
    per_image = True
    secret = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        #: A pool a run reserves from its dataset (overrides the ``pool`` folder).
        self.pool: PublicPool | None = None

    def calibrate(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
    ) -> PoolEmbeddings:
        """The pool and its embeddings, once per run (CPU tensors, so they travel anywhere)."""
        model = pick_model(surrogates, self.config.model)
        return PoolEmbeddings.measure(self.config, [model], torch.device(device), self.pool)

    def craft(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        out_dir: str | Path | None = None,
        progress: bool = True,
        calibration: PoolEmbeddings | None = None,
    ) -> dict[str, Veil]:
        device = torch.device(device)
        model = pick_model(surrogates, self.config.model)
        pool = calibration or self.calibrate(identities, surrogates, device=device)
        bank = pool.embeddings[model.name]
        if len(pool.pool) < self.config.k:
            raise ConfigError(
                f"ksame k={self.config.k} exceeds the public pool ({len(pool.pool)} photos)"
            )
        out = {}
        for name, images in identities.items():
            with torch.no_grad():
                emb = model(images.to(device)).float().cpu()
            sims = emb @ bank.T
            # The same name in the pool is the same person: never average his own faces.
            own = torch.tensor([who == name for who in pool.pool.identities])
            sims[:, own] = -float("inf")
            nearest = sims.topk(self.config.k, dim=1).indices
            means = pool.pool.photos[nearest].mean(1)
            out[name] = Veil(
                veil=means,
                alpha=1.0,
                protector=self.name,
                identity=name,
                config=self.config.to_dict(),
                surrogates=[{"name": model.name}],
                image_sha256=image_sha256(images),
            )
        return out

    def apply(self, veil: Veil, images: torch.Tensor) -> torch.Tensor:
        """The crafted means (the photos themselves play no further part)."""
        if veil.veil.shape != images.shape:
            raise ConfigError(
                f"ksame replacements are for {tuple(veil.veil.shape)} photos, "
                f"got {tuple(images.shape)}: apply it to the photos it was crafted on"
            )
        return veil.veil.to(images.device, images.dtype)
