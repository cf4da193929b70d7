"""Classification heads for face-recognition training: softmax, CosFace (LMCL) and ArcFace.

Each head maps a batch of raw embeddings and labels to logits for ``F.cross_entropy``. The margin
heads compare L2-normalised embeddings with L2-normalised class centres, so their logits are
``s * cos(theta)`` with a margin applied to the target class only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from veilbench.errors import ConfigError


class SoftmaxHead(nn.Module):
    """Plain linear classifier on the raw embedding (the paper's S-ResNet loss)."""

    def __init__(self, embedding_size: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(embedding_size, num_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.fc(embeddings)

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the batch."""
        return F.cross_entropy(self(embeddings, labels), labels)


class MarginHead(nn.Module):
    """Cosine classifier: logits = ``margin_logits(cos(embedding, class centre), labels)``."""

    def __init__(self, embedding_size: int, num_classes: int, s: float, m: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)
        self.s = s
        self.m = m

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """cos(theta) between each embedding and each class centre (N x C)."""
        return F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).t()

    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scaled logits from cosines, with the margin on each row's target class."""
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.margin_logits(self.cosine(embeddings), labels)

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the batch."""
        return F.cross_entropy(self(embeddings, labels), labels)


class CosFaceHead(MarginHead):
    """Large margin cosine loss (Wang et al. 2018): target logit ``s * (cos - m)``."""

    def __init__(self, embedding_size: int, num_classes: int, s: float = 64.0, m: float = 0.35):
        super().__init__(embedding_size, num_classes, s, m)

    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return self.s * (cos - self.m * onehot)


class ArcFaceHead(MarginHead):
    """Additive angular margin (Deng et al. 2019): target logit ``s * cos(theta + m)``.

    As in insightface: where ``theta + m`` would pass pi (``cos <= th = cos(pi - m)``) the target
    logit becomes ``cos - mm`` (``mm = sin(pi - m) * m``) so it keeps decreasing in theta; with
    ``easy_margin`` the margin is applied only where ``cos > 0``.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        s: float = 64.0,
        m: float = 0.5,
        easy_margin: bool = False,
    ):
        super().__init__(embedding_size, num_classes, s, m)
        self.easy_margin = easy_margin
        self.cos_m = math.cos(m)
        self.sin_m = math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = cos.gather(1, labels[:, None])
        # Clamp away from |cos| = 1, where d sqrt(1 - cos^2) / d cos is infinite.
        sin = torch.sqrt((1.0 - target.pow(2)).clamp_min(1e-7))
        cos_theta_m = target * self.cos_m - sin * self.sin_m
        if self.easy_margin:
            new_target = torch.where(target > 0, cos_theta_m, target)
        else:
            new_target = torch.where(target > self.th, cos_theta_m, target - self.mm)
        return self.s * cos.scatter(1, labels[:, None], new_target)


HEADS: dict[str, type[nn.Module]] = {
    "softmax": SoftmaxHead,
    "cosface": CosFaceHead,
    "arcface": ArcFaceHead,
}


def create_head(name: str, embedding_size: int, num_classes: int) -> nn.Module:
    """A head by name (``softmax``, ``cosface``, ``arcface``) with its default s and m."""
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; choose one of {', '.join(HEADS)}")
    return HEADS[name](embedding_size, num_classes)
