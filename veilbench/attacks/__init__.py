"""Image attacks for robustness sweeps: what uploads and adversaries do to protected photos.

Every attack is ``factory(strength) -> fn`` with ``fn(images) -> images`` on ``N x 3 x H x W``
float tensors in [0, 255]. Random attacks draw from a generator seeded by the strength, so a
sweep is reproducible. Strength 0 (or 1.0 for ``resize``, 100 for ``jpeg``) is the identity.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

Attack = Callable[[torch.Tensor], torch.Tensor]


def _generator(strength: float, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(strength * 1000) + 12345)
    return g


def gaussian(sigma: float) -> Attack:
    """Additive Gaussian noise; ``sigma`` in 0-255 pixel units (the paper sweeps past 120)."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=_generator(sigma, x.device), device=x.device)
        return (x + sigma * noise).clamp(0, 255)

    return attack


def salt_pepper(amount: float) -> Attack:
    """Salt-and-pepper noise: a fraction ``amount`` of pixels set to 0 or 255 (all channels)."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        g = _generator(amount, x.device)
        n, _, h, w = x.shape
        u = torch.rand((n, 1, h, w), generator=g, device=x.device)
        x = x.clone()
        x = torch.where(u < amount / 2, torch.zeros_like(x), x)
        return torch.where((u >= amount / 2) & (u < amount), torch.full_like(x, 255.0), x)

    return attack


def median(kernel: float) -> Attack:
    """Median filter with an odd ``kernel`` size (1 = identity)."""
    k = int(kernel)
    if k % 2 == 0:
        raise ValueError(f"median kernel must be odd, got {k}")

    def attack(x: torch.Tensor) -> torch.Tensor:
        if k <= 1:
            return x
        pad = k // 2
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        patches = padded.unfold(2, k, 1).unfold(3, k, 1)
        return patches.reshape(*patches.shape[:4], -1).median(dim=-1).values

    return attack


def blur(sigma: float) -> Attack:
    """Gaussian blur with standard deviation ``sigma`` pixels."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        if sigma <= 0:
            return x
        radius = max(1, int(3 * sigma + 0.5))
        t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
        k1 = torch.exp(-(t**2) / (2 * sigma**2))
        k1 = k1 / k1.sum()
        c = x.shape[1]
        x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
        x = F.conv2d(x, k1.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        return F.conv2d(x, k1.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)

    return attack


def resize(scale: float) -> Attack:
    """Downscale by ``scale`` (e.g. 0.5) and back up, bilinear (what thumbnails do)."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        if scale >= 1.0:
            return x
        h, w = x.shape[-2:]
        small = F.interpolate(
            x,
            size=(max(1, round(h * scale)), max(1, round(w * scale))),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)

    return attack


def jpeg(quality: float) -> Attack:
    """JPEG re-encoding at ``quality`` (1-100, libjpeg through Pillow)."""
    q = int(quality)

    def attack(x: torch.Tensor) -> torch.Tensor:
        if q >= 100:
            return x
        out = []
        for img in x.detach().clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy():
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=q)
            out.append(np.asarray(Image.open(buf).convert("RGB")))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().to(x.device)

    return attack


def nlmeans(h: float) -> Attack:
    """Non-local means denoising (OpenCV ``fastNlMeansDenoisingColored``, 7 x 7 patches in a
    21 x 21 window) with filter strength ``h`` for luminance and colour, 0-255 units; an
    offline purifier that strips small perturbations while keeping edges."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        if h <= 0:
            return x
        out = []
        for img in x.detach().clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy():
            bgr = np.ascontiguousarray(img[..., ::-1])  # OpenCV's Lab conversion expects BGR
            out.append(cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)[..., ::-1])
        return torch.from_numpy(np.stack(out).copy()).permute(0, 3, 1, 2).float().to(x.device)

    return attack


# Simple processing a person would try on a protected photo to see the face (the perception
# proxy, ``veilbench.evaluation.perception``). ``amount`` blends the processed image with the
# input: 0 is the identity, 1 the full operation.


def _blend(x: torch.Tensor, processed: torch.Tensor, amount: float) -> torch.Tensor:
    return ((1 - amount) * x + amount * processed).clamp(0, 255)


def contrast_stretch(amount: float) -> Attack:
    """ "Auto levels": each channel's 1st-99th percentile stretched to 0-255."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        if amount <= 0:
            return x
        flat = x.flatten(2)
        lo = torch.quantile(flat, 0.01, dim=2, keepdim=True).unsqueeze(-1)
        hi = torch.quantile(flat, 0.99, dim=2, keepdim=True).unsqueeze(-1)
        stretched = (x - lo) * 255.0 / (hi - lo).clamp(min=1.0)
        return _blend(x, stretched.clamp(0, 255), amount)

    return attack


def equalize(amount: float) -> Attack:
    """Histogram equalisation of each channel (OpenCV ``equalizeHist`` on the uint8 image)."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        if amount <= 0:
            return x
        arr = x.detach().clamp(0, 255).round().byte().cpu().numpy()
        out = np.stack([[cv2.equalizeHist(np.ascontiguousarray(c)) for c in img] for img in arr])
        return _blend(x, torch.from_numpy(out).float().to(x.device), amount)

    return attack


def invert(amount: float) -> Attack:
    """Channel inversion (the photo's negative, ``255 - x``)."""

    def attack(x: torch.Tensor) -> torch.Tensor:
        return x if amount <= 0 else _blend(x, 255.0 - x, amount)

    return attack
