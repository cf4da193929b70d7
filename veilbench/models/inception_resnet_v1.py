"""Inception-ResNet-v1 (the FaceNet backbone), with facenet-pytorch's state-dict key names.

Module names, paddings and BatchNorm settings (eps 0.001) follow facenet-pytorch's
``models/inception_resnet_v1.py``, so its checkpoints load strictly (minus the ``logits``
classifier). The forward pass returns the raw embedding (``last_bn`` output), before L2
normalisation; :class:`veilbench.models.base.FaceModel` normalises.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from veilbench.errors import WeightsError


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 0.001, TensorFlow's) -> ReLU."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int | tuple[int, int],
        stride: int,
        padding: int | tuple[int, int] = 0,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_planes,
            out_planes,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_planes, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Block35(nn.Module):
    """Inception-ResNet-A: 35x35 grid (17x17 at 160 px input), 256 channels."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(256, 32, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 32, kernel_size=1, stride=1),
            BasicConv2d(32, 32, kernel_size=3, stride=1, padding=1),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(256, 32, kernel_size=1, stride=1),
            BasicConv2d(32, 32, kernel_size=3, stride=1, padding=1),
            BasicConv2d(32, 32, kernel_size=3, stride=1, padding=1),
        )
        self.conv2d = nn.Conv2d(96, 256, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Block17(nn.Module):
    """Inception-ResNet-B: 896 channels, factorised 1x7 / 7x1 branch."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(896, 128, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 128, kernel_size=1, stride=1),
            BasicConv2d(128, 128, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            BasicConv2d(128, 128, kernel_size=(7, 1), stride=1, padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(256, 896, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Block8(nn.Module):
    """Inception-ResNet-C: 1792 channels; the last one has no ReLU."""

    def __init__(self, scale: float = 1.0, noReLU: bool = False):  # noqa: N803 (upstream name)
        super().__init__()
        self.scale = scale
        self.noReLU = noReLU
        self.branch0 = BasicConv2d(1792, 192, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1792, 192, kernel_size=1, stride=1),
            BasicConv2d(192, 192, kernel_size=(1, 3), stride=1, padding=(0, 1)),
            BasicConv2d(192, 192, kernel_size=(3, 1), stride=1, padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1792, kernel_size=1, stride=1)
        self.relu = nn.Identity() if noReLU else nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Mixed_6a(nn.Module):  # noqa: N801 (upstream name)
    """Reduction-A: 256 -> 896 channels, stride 2."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, kernel_size=3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 192, kernel_size=1, stride=1),
            BasicConv2d(192, 192, kernel_size=3, stride=1, padding=1),
            BasicConv2d(192, 256, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Mixed_7a(nn.Module):  # noqa: N801 (upstream name)
    """Reduction-B: 896 -> 1792 channels, stride 2."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(896, 256, kernel_size=1, stride=1),
            BasicConv2d(256, 384, kernel_size=3, stride=2),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 256, kernel_size=1, stride=1),
            BasicConv2d(256, 256, kernel_size=3, stride=2),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(896, 256, kernel_size=1, stride=1),
            BasicConv2d(256, 256, kernel_size=3, stride=1, padding=1),
            BasicConv2d(256, 256, kernel_size=3, stride=2),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


def per_image_standardization(x: torch.Tensor) -> torch.Tensor:
    """``tf.image.per_image_standardization`` (FaceNet's prewhitening), differentiably.

    Each image has its mean removed and is divided by its std, floored at ``1/sqrt(#values)``
    as TensorFlow does, so a flat image gives zeros instead of a division by zero.
    """
    flat = x.flatten(1)
    mean = flat.mean(dim=1)
    std = flat.std(dim=1, unbiased=False).clamp_min(flat.shape[1] ** -0.5)
    return (x - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)


class InceptionResnetV1(nn.Module):
    """Inception-ResNet-v1 face embedder: N x 3 x H x W (160 px) -> raw N x ``embedding_size``.

    With ``standardize=True`` each input image is prewhitened first (what the Keras FaceNet
    expects); without it the input must already be normalised, as facenet-pytorch's is.
    """

    def __init__(
        self, embedding_size: int = 512, dropout_prob: float = 0.6, standardize: bool = False
    ):
        super().__init__()
        self.embedding_size = embedding_size
        self.standardize = standardize
        self.conv2d_1a = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, kernel_size=3, stride=1)
        self.conv2d_2b = BasicConv2d(32, 64, kernel_size=3, stride=1, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, kernel_size=1, stride=1)
        self.conv2d_4a = BasicConv2d(80, 192, kernel_size=3, stride=1)
        self.conv2d_4b = BasicConv2d(192, 256, kernel_size=3, stride=2)
        self.repeat_1 = nn.Sequential(*(Block35(scale=0.17) for _ in range(5)))
        self.mixed_6a = Mixed_6a()
        self.repeat_2 = nn.Sequential(*(Block17(scale=0.10) for _ in range(10)))
        self.mixed_7a = Mixed_7a()
        self.repeat_3 = nn.Sequential(*(Block8(scale=0.20) for _ in range(5)))
        self.block8 = Block8(noReLU=True)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_prob)
        self.last_linear = nn.Linear(1792, embedding_size, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_size, eps=0.001, momentum=0.1, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            x = per_image_standardization(x)
        for layer in (
            self.conv2d_1a,
            self.conv2d_2a,
            self.conv2d_2b,
            self.maxpool_3a,
            self.conv2d_3b,
            self.conv2d_4a,
            self.conv2d_4b,
            self.repeat_1,
            self.mixed_6a,
            self.repeat_2,
            self.mixed_7a,
            self.repeat_3,
            self.block8,
        ):
            x = layer(x)
        x = self.dropout(self.avgpool_1a(x).flatten(1))
        return self.last_bn(self.last_linear(x))


def load_facenet_pytorch_checkpoint(
    model: InceptionResnetV1, state_dict: Mapping[str, torch.Tensor]
) -> InceptionResnetV1:
    """Load a facenet-pytorch state dict (e.g. ``20180402-114759-vggface2.pt``) strictly.

    The classifier head (``logits.*``) is dropped; BatchNorm ``num_batches_tracked`` counters,
    absent from older checkpoints, may be missing. Anything else that does not fit is an error.
    """
    sd = {k: v for k, v in state_dict.items() if not k.startswith("logits.")}
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in sd if k in own and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        shapes = ", ".join(f"{k}: {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:3])
        raise WeightsError(
            "checkpoint is not a facenet-pytorch InceptionResnetV1 for this model "
            f"(embedding_size={model.embedding_size}): missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shapes [{shapes}]; pass the state dict of "
            "facenet_pytorch.InceptionResnetV1 and the matching embedding_size"
        )
    model.load_state_dict(sd, strict=False)  # only num_batches_tracked may be left unset
    return model
