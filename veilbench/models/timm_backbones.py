"""ResNet-50 and SE-ResNet-50 face embedders: a timm trunk plus an arcface_torch-style neck.

The trunk is ``timm.create_model(name, pretrained=False, num_classes=0, global_pool='')``
(its keys live under ``body.``); the neck follows arcface_torch's IResNet output layer:
BN2d - dropout - flatten - linear - BN1d to a 512-d embedding, keeping the spatial layout of the
last feature map (4 x 4 for 112 x 112 inputs) instead of pooling it away.
"""

from __future__ import annotations

import math

import timm
import torch
from torch import nn

#: veilbench architecture name -> timm model name.
TIMM_ARCHITECTURES: dict[str, str] = {"resnet50": "resnet50", "seresnet50": "seresnet50"}


class TimmFaceNet(nn.Module):
    """A timm CNN trunk with a face-embedding neck, for square ``input_size`` inputs."""

    def __init__(
        self, timm_name: str, num_features: int = 512, input_size: int = 112, dropout: float = 0.0
    ):
        super().__init__()
        self.body = timm.create_model(timm_name, pretrained=False, num_classes=0, global_pool="")
        channels = self.body.num_features
        # Stride-2 stages with "same" padding give ceil(size / 2) each: 112 -> 4 at stride 32.
        side = math.ceil(input_size / self.body.feature_info[-1]["reduction"])
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False  # as arcface_torch's embedding BN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.bn2(self.body(x)), 1))
        return self.features(self.fc(x))


def timm_facenet(name: str, num_features: int = 512, dropout: float = 0.0) -> TimmFaceNet:
    """Build ``resnet50`` or ``seresnet50`` for 112 x 112 face crops (random weights)."""
    return TimmFaceNet(TIMM_ARCHITECTURES[name], num_features=num_features, dropout=dropout)
