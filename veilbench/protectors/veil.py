"""The person-specific veil (the paper's method): one veil per person, eq. 12-14."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from veilbench.protectors.engine import (
    CraftConfig,
    EngineProtector,
    Objective,
    require_non_negative,
    require_positive,
)
from veilbench.protectors.shift import keyed_shifts, recover_by_search, roll_each
from veilbench.veilfile import Veil


@dataclass
class VeilConfig(CraftConfig):
    """Hyper-parameters of the person-specific veil (defaults measured with SFace on LFW)."""

    #: Weight of the visual term; it enters eq. 13 with a minus sign (pushes x' away from x).
    lambda_vis: float = 1.0
    #: Weight of the block-variance term (eq. 9-11), which flattens leftover face contours.
    #: Measured (SFace, 6 photos, 40 iterations): mu 30 gave SSIM 0.005 at cosine 0.5-0.9;
    #: mu 300 / 3000 let the 20% original show through (SSIM 0.07 / 0.13, cosine ~0.4).
    mu_var: float = 30.0
    #: The identity feature target: "centroid" (the normalised mean of the crafting photos'
    #: embeddings), "hull" (eq. 6, convex hull) or "span" (eq. 5, least squares). The paper's
    #: hull is not the default: for a unit-norm embedding the distance to the hull is zero only
    #: at its vertices, so crafting settles on the nearest single photo's embedding, on raw web
    #: photos an atypical one (sunglasses). Measured on celeb-dev with FaceNet: the hull held
    #: the protected photos at cosine 0.47-0.55 to the centroid (rank-1 0.0-0.4), the centroid
    #: reached 0.62-0.90 (rank-1 1.0) at the same SSIM (docs/protectors.md).
    subspace: str = "centroid"
    #: Projected-gradient iterations of the hull projection.
    hull_iters: int = 50
    #: Block-variance window and stride (stride 1: overlapping, the paper's sliding convolution).
    block_size: int = 3
    block_stride: int = 1
    #: Mitigation against averaging adversaries (0 = off, the paper's veil): each photo gets
    #: the veil circularly shifted by up to this many pixels, keyed by the veil's secret seed
    #: and the photo; crafted in expectation over shifts (see veilbench.protectors.shift).
    shift: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_non_negative(self, "lambda_vis", "mu_var")
        require_positive(self, "block_size", "block_stride")

    def objective(self) -> Objective:
        return Objective(
            self.subspace,
            self.lambda_vis,
            self.mu_var,
            self.block_size,
            self.block_stride,
            self.hull_iters,
        )


class VeilProtector(EngineProtector):
    """Person-specific veil: the crafting photos' feature subspace as the target (eq. 13)."""

    name = "veil"
    per_image = False
    config_class = VeilConfig
    threats = ("reused_perturbation", "purification")
    utility = "white_box_tar"

    def apply(self, veil: Veil, images: torch.Tensor) -> torch.Tensor:
        shift = int(veil.config.get("shift", 0))
        if not shift:
            return super().apply(veil, images)
        v = veil.veil.to(images.device, images.dtype).expand(len(images), -1, -1, -1)
        rolled = roll_each(v, keyed_shifts(images, shift, veil.seed))
        return (veil.alpha * images + (1 - veil.alpha) * rolled).clamp(0, 255)

    def recover(
        self, veil: Veil, protected: torch.Tensor, gaussian_sigma: float = 0.0
    ) -> torch.Tensor:
        shift = int(veil.config.get("shift", 0))
        if not shift:
            return super().recover(veil, protected, gaussian_sigma)
        return recover_by_search(veil.veil.cpu(), protected.cpu(), veil.alpha, shift)
