"""Full-reference image-quality metrics (SSIM, PSNR), batched in torch.

Both take two ``N x C x H x W`` float images in ``[0, data_range]`` (veilbench's images are RGB
in [0, 255]) and return one value per image, shape ``(N,)``, as float64 on the inputs' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from veilbench.errors import DataError

#: skimage's ``structural_similarity`` defaults (Wang et al. 2004 constants, 7 x 7 window).
SSIM_WIN_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(a: torch.Tensor, b: torch.Tensor, what: str, min_size: int = 1) -> None:
    if a.ndim != 4 or a.shape != b.shape:
        raise DataError(
            f"{what} compares two image batches of the same shape N x C x H x W, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}; resize or crop both to the same size"
        )
    if min(a.shape[2:]) < min_size:
        raise DataError(
            f"{what} needs images at least {min_size} x {min_size} pixels, got "
            f"{tuple(a.shape[2:])}; compare larger crops"
        )


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Per-image SSIM (N,), the same number as skimage's ``structural_similarity`` defaults.

    Matches ``structural_similarity(x, y, channel_axis=-1, data_range=data_range)`` on HWC
    images: 7 x 7 uniform window, K1=0.01, K2=0.03, sample covariance (N / (N - 1)), the SSIM
    map averaged over the region where the window fits inside the image (skimage crops 3 pixels
    off each border), then over channels. Computed in float64; differentiable.
    """
    _check_pair(a, b, "SSIM", SSIM_WIN_SIZE)
    # float64: E[x^2] - E[x]^2 cancels badly in float32 for values up to 255^2.
    x, y = a.double(), b.double()
    n, c = x.shape[:2]
    # One pooling call for the five local moments; avg_pool2d without padding yields exactly
    # the valid region skimage keeps after cropping its reflect-padded filter output.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    moments = F.avg_pool2d(stack, SSIM_WIN_SIZE, stride=1)
    ux, uy, uxx, uyy, uxy = moments.split(c, dim=1)
    np_ = SSIM_WIN_SIZE**2
    cov_norm = np_ / (np_ - 1.0)  # unbiased (sample) covariance, skimage's default
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    # Every channel has the same number of valid pixels, so the mean over (C, H, W) equals
    # skimage's mean of per-channel means.
    return s.reshape(n, -1).mean(dim=1)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Per-image PSNR in dB (N,); identical images give ``+inf`` (never NaN), as in skimage.

    ``10 * log10(data_range^2 / MSE)`` with the MSE over all channels and pixels of each image,
    i.e. skimage's ``peak_signal_noise_ratio`` per image. Aggregate with care (a median, or
    count the infinite values separately), since one unchanged image makes a mean infinite.
    """
    _check_pair(a, b, "PSNR")
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(dim=1)
    # log10 of a positive number over 0 is +inf in torch; no division warning, no NaN.
    return 10.0 * torch.log10(data_range**2 / mse)
