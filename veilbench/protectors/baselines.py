"""The paper's baselines (V-UAP, AVIH-style per-image perturbations) and no protection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from veilbench.models.base import FaceModel
from veilbench.protectors.engine import (
    CraftConfig,
    EngineProtector,
    Objective,
    make_config,
    require_non_negative,
    require_positive,
)
from veilbench.veilfile import Veil, image_sha256


@dataclass
class VUAPConfig(CraftConfig):
    """V-UAP (eq. 15): a person-wise veil, per-image feature distance, no block variance."""

    lambda_vis: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_non_negative(self, "lambda_vis")

    def objective(self) -> Objective:
        return Objective("own", self.lambda_vis)


@dataclass
class AVIHConfig(CraftConfig):
    """AVIH-style (Su et al., ICCV 2023): one perturbation per photo, own embedding as target.

    Same blend as the veil so the three protectors compare like for like; AVIH's own 4 x 4
    blocks for the block variance.
    """

    lambda_vis: float = 1.0
    mu_var: float = 30.0
    block_size: int = 4
    block_stride: int = 1
    #: Photos crafted together (each is its own unit).
    batch_size: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        require_non_negative(self, "lambda_vis", "mu_var")
        require_positive(self, "block_size", "block_stride")

    def objective(self) -> Objective:
        return Objective("own", self.lambda_vis, self.mu_var, self.block_size, self.block_stride)


class VUAPProtector(EngineProtector):
    """Class-wise universal perturbation: each protected photo keeps its own embedding."""

    name = "vuap"
    per_image = False
    config_class = VUAPConfig
    threats = ("reused_perturbation", "purification")
    utility = "white_box_tar"


class AVIHProtector(EngineProtector):
    """One perturbation per photo (crafting cost grows with the number of photos)."""

    name = "avih"
    per_image = True
    config_class = AVIHConfig
    utility = "white_box_tar"


@dataclass
class NoneConfig:
    """No protection has no hyper-parameters."""

    def to_dict(self) -> dict:
        return {}


class NoneProtector:
    """No protection: the reference row of every table (apply returns the images unchanged)."""

    name = "none"
    per_image = False
    # Nothing to attack; on the cloak frontier it is the unchanged photo (LPIPS 0).
    threats: tuple[str, ...] = ()
    promise = "cloak"
    utility = "lpips"

    def __init__(self, **params: Any) -> None:
        self.config = make_config(NoneConfig, params)

    def craft(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        out_dir: str | Path | None = None,
        progress: bool = True,
    ) -> dict[str, Veil]:
        """An all-zero veil with alpha 1, so the generic blend and recovery are the identity."""
        return {
            name: Veil(
                veil=torch.zeros(imgs.shape[1:]),
                alpha=1.0,
                protector=self.name,
                identity=name,
                image_sha256=image_sha256(imgs),
            )
            for name, imgs in identities.items()
        }

    def apply(self, veil: Veil, images: torch.Tensor) -> torch.Tensor:
        """The images themselves."""
        return images

    def recover(
        self, veil: Veil, protected: torch.Tensor, gaussian_sigma: float = 0.0
    ) -> torch.Tensor:
        """The protected images are the originals."""
        return protected
