"""Training face-recognition models: margin heads and the training loop."""

from __future__ import annotations

from veilbench.training.heads import ArcFaceHead, CosFaceHead, SoftmaxHead, create_head
from veilbench.training.train import TrainResult, make_train_command, train, train_command

__all__ = [
    "ArcFaceHead",
    "CosFaceHead",
    "SoftmaxHead",
    "TrainResult",
    "create_head",
    "make_train_command",
    "train",
    "train_command",
]
