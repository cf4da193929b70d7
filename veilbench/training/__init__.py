"""Training face-recognition models: margin heads and the training loop."""

from __future__ import annotations

from veilbench.training.heads import ArcFaceHead, CosFaceHead, SoftmaxHead, create_head
from veilbench.training.train import TrainResult, train

__all__ = [
    "ArcFaceHead",
    "CosFaceHead",
    "SoftmaxHead",
    "TrainResult",
    "create_head",
    "train",
]
