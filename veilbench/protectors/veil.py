"""The person-specific veil (the paper's method): one veil per person, eq. 12-14."""

from __future__ import annotations

from dataclasses import dataclass

from veilbench.protectors.engine import CraftConfig, EngineProtector, Objective


@dataclass
class VeilConfig(CraftConfig):
    """Hyper-parameters of the person-specific veil (defaults measured with SFace on LFW)."""

    #: Weight of the visual term; it enters eq. 13 with a minus sign (pushes x' away from x).
    lambda_vis: float = 1.0
    #: Weight of the block-variance term (eq. 9-11), which flattens leftover face contours.
    #: Measured (SFace, 6 photos, 40 iterations): mu 30 gave SSIM 0.005 at cosine 0.5-0.9;
    #: mu 300 / 3000 let the 20% original show through (SSIM 0.07 / 0.13, cosine ~0.4).
    mu_var: float = 30.0
    #: The identity feature subspace: "hull" (eq. 6, convex hull) or "span" (eq. 5, least squares).
    subspace: str = "hull"
    #: Projected-gradient iterations of the hull projection.
    hull_iters: int = 50
    #: Block-variance window and stride (stride 1: overlapping, the paper's sliding convolution).
    block_size: int = 3
    block_stride: int = 1

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
