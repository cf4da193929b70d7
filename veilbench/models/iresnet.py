"""IResNet-18/34/50/100, the ArcFace backbones, with insightface's state-dict key names.

Parameter and buffer names match insightface ``recognition/arcface_torch/backbones/iresnet.py``
(``conv1, bn1, prelu, layer1..4.N.{bn1, conv1, bn2, prelu, conv2, bn3, downsample.0/1}, bn2,
fc, features``), so an ``arcface_torch`` ``backbone.pth`` loads strictly. Input: 112 x 112 RGB
normalised to [-1, 1]; output: the raw 512-d embedding (before L2 normalisation).
"""

from __future__ import annotations

import torch
from torch import nn

#: Blocks per stage, as in arcface_torch's r18/r34/r50/r100.
IRESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """The pre-activation-style residual block: BN-conv-BN-PReLU-conv(stride)-BN (+ shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = _conv3x3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = _conv3x3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(cout, eps=1e-5),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IResNet for 112 x 112 inputs (the final 512 x 7 x 7 map feeds a linear layer)."""

    def __init__(
        self, layers: tuple[int, int, int, int], num_features: int = 512, dropout: float = 0.0
    ):
        super().__init__()
        self.conv1 = _conv3x3(3, 64)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, planes in enumerate((64, 128, 256, 512)):
            stage = [IBasicBlock(cin, planes, stride=2)]
            stage += [IBasicBlock(planes, planes) for _ in range(layers[i] - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            cin = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        # As upstream: the embedding BN keeps gamma fixed at 1 (only its shift is learnt).
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, IBasicBlock):
                # Each residual branch starts at zero (as timm's ResNets, Goyal et al. 2017): an
                # untrained deep IResNet then stays finite in eval mode instead of overflowing.
                nn.init.zeros_(m.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet(name: str, num_features: int = 512, dropout: float = 0.0) -> IResNet:
    """Build ``iresnet18``/``34``/``50``/``100`` (random weights)."""
    return IResNet(IRESNET_LAYERS[name], num_features=num_features, dropout=dropout)
