"""MobileFaceNet trained on CASIA-WebFace with an ArcFace head (128-d, 112 x 96 input).

The weights are ``model/best/068.ckpt`` of Xiaoccer/MobileFaceNet_Pytorch: a ``torch.save``
dict ``{"epoch", "net_state_dict"}``. :class:`CasiaMobileFaceNet` is the network of Chen et
al. 2018 with that repository's parameter names (``conv1``, ``dw_conv1``, ``blocks.K.conv``,
``conv2``, ``linear7``, ``linear1``), so the state dict loads strictly: a 3x3 stride-2 stem,
a depthwise 3x3, 15 inverted bottlenecks (PReLU), a 1x1 to 512, a 7 x 6 global depthwise conv
and a linear 1x1 to 128.

Input: the SphereFace 5-point crop, 112 x 96 (H x W), RGB, ``(x - 127.5) / 128``. That
template is the ArcFace one shifted 8 px left, so the crop is the ArcFace square without 8 px
on each side (``SPHEREFACE_CROP_96X112``). Its authors evaluate LFW with the features of the
crop and of its mirror image concatenated (256-d): :func:`create_mobilefacenet_casia` with
``flip=True`` gives that embedding; veilbench's runs use the single crop (128-d).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from veilbench.errors import WeightsError
from veilbench.models.base import (
    FaceModel,
    FaceSpace,
    flip_concat,
)
from veilbench.models.cards import mobilefacenet_casia_card
from veilbench.weights import MOBILEFACENET_CASIA, resolve

#: (expansion, output channels, repeats, first stride) of the bottleneck stages.
STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class ConvBN(nn.Module):
    """Conv (no bias) - BN - PReLU, or without the PReLU when ``linear``."""

    def __init__(
        self, cin: int, cout: int, kernel, stride=1, padding=0, *, depthwise=False, linear=False
    ):
        super().__init__()
        groups = cin if depthwise else 1
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = None if linear else nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """1x1 expand - depthwise 3x3 - 1x1 project; residual when shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class CasiaMobileFaceNet(nn.Module):
    """MobileFaceNet for 112 x 96 input, 128-d output (raw, not normalised)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBN(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBN(64, 64, 3, 1, 1, depthwise=True)
        blocks, cin = [], 64
        for expansion, cout, repeats, stride in STAGES:
            for i in range(repeats):
                blocks.append(Bottleneck(cin, cout, stride if i == 0 else 1, expansion))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBN(128, 512, 1)
        self.linear7 = ConvBN(512, 512, (7, 6), depthwise=True, linear=True)
        self.linear1 = ConvBN(512, 128, 1, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.dw_conv1(self.conv1(x)))
        return self.linear1(self.linear7(self.conv2(x))).flatten(1)


def load_casia_checkpoint(path) -> CasiaMobileFaceNet:
    """The network with ``068.ckpt``'s weights, loaded strictly (eval mode)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        raise WeightsError(f"cannot read MobileFaceNet checkpoint {path}: {exc}") from exc
    state = ckpt.get("net_state_dict", ckpt) if isinstance(ckpt, dict) else None
    net = CasiaMobileFaceNet()
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds no state dict; use {MOBILEFACENET_CASIA.name}")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path} does not fit the CASIA MobileFaceNet ({str(exc).splitlines()[0]}); use "
            f"{MOBILEFACENET_CASIA.name} (sha256 {MOBILEFACENET_CASIA.sha256})"
        ) from exc
    return net.eval()


def create_mobilefacenet_casia(
    space: FaceSpace | None = None, flip: bool = False, **_: Any
) -> FaceModel:
    """The CASIA MobileFaceNet as a frozen FaceModel; ``flip``: 256-d flip-concatenated."""
    net = load_casia_checkpoint(resolve(MOBILEFACENET_CASIA))
    net.requires_grad_(False)
    model = FaceModel(net, mobilefacenet_casia_card(), space).eval()
    return flip_concat(model) if flip else model
