"""MTCNN five-point landmarks (Zhang et al. 2016): the detector most margin-loss models were
trained and evaluated with (insightface's MS1M and LFW crops, CASIA-WebFace MobileFaceNets).

A model is at home with the landmarks its training crops were aligned by: the same photos
aligned by YuNet's points instead of MTCNN's cost MobileFace V2 0.7 point of LFW accuracy
(docs/models.md). The three networks' weights are facenet-pytorch's (MIT), read out of its
wheel on PyPI; the cascade (image pyramid, P-Net proposals, R-Net and O-Net refinement) is
written here, with facenet-pytorch's default thresholds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from veilbench.weights import MTCNN_WEIGHTS, resolve

#: Smallest face searched for (pixels), the score each stage keeps, and the pyramid's step.
MIN_FACE = 20
THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709


class _Net(nn.Module):
    """One stage, its layers named as in the weights (conv1, prelu1, pool1, ..., dense5_1)."""

    def __init__(self, body: list[tuple], heads: list[int]):
        super().__init__()
        self.body: list[str] = []
        n = pools = 0
        for kind, *args in body:
            if kind == "pool":
                pools += 1
                self._add(f"pool{pools}", nn.MaxPool2d(*args, ceil_mode=True))
                continue
            n += 1
            layer = nn.Conv2d(*args) if kind == "conv" else nn.Linear(*args)
            self._add(f"{kind}{n}", layer)
            self._add(f"prelu{n}", nn.PReLU(args[1]))
        kind, width = body[-1][0], body[-1][2]
        self.heads = [f"{kind}{n + 1}_{i + 1}" for i in range(len(heads))]
        for name, size in zip(self.heads, heads, strict=True):
            self.add_module(
                name, nn.Conv2d(width, size, 1) if kind == "conv" else nn.Linear(width, size)
            )

    def _add(self, name: str, layer: nn.Module) -> None:
        self.add_module(name, layer)
        self.body.append(name)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The heads' outputs in order: face logits, box regression (and O-Net's landmarks)."""
        for name in self.body:
            if name.startswith("dense") and x.ndim == 4:
                # The weights were converted from Caffe's (C, W, H) flattening order.
                x = x.permute(0, 3, 2, 1).flatten(1)
            x = getattr(self, name)(x)
        return [getattr(self, h)(x) for h in self.heads]


#: The three stages' layers, (kind, sizes...), and their heads' widths.
_STAGES: tuple[tuple[list[tuple], list[int]], ...] = (
    ([("conv", 3, 10, 3), ("pool", 2, 2), ("conv", 10, 16, 3), ("conv", 16, 32, 3)], [2, 4]),
    (
        [("conv", 3, 28, 3), ("pool", 3, 2), ("conv", 28, 48, 3), ("pool", 3, 2),
         ("conv", 48, 64, 2), ("dense", 576, 128)],
        [2, 4],
    ),
    (
        [("conv", 3, 32, 3), ("pool", 3, 2), ("conv", 32, 64, 3), ("pool", 3, 2),
         ("conv", 64, 64, 3), ("pool", 2, 2), ("conv", 64, 128, 2), ("dense", 1152, 256)],
        [2, 4, 10],
    ),
)  # fmt: skip


@cache
def _networks() -> tuple[_Net, _Net, _Net]:
    nets = []
    for (body, heads), weight in zip(_STAGES, MTCNN_WEIGHTS, strict=True):
        net = _Net(body, heads)
        net.load_state_dict(torch.load(resolve(weight), map_location="cpu", weights_only=True))
        nets.append(net.eval().requires_grad_(False))
    return nets[0], nets[1], nets[2]


# The three networks are tiny: on a CPU they run 3-4x faster on one intra-op thread than on
# several, so the cascade runs on one thread, one photo at a time (torch's thread count is
# process-wide: the lock keeps concurrent aligner threads from racing on it).
_LOCK = threading.Lock()


@contextmanager
def _one_thread() -> Iterator[None]:
    with _LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to the square on its centre (the next stage's input is square)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out = boxes.clone()
    out[:, 0] = boxes[:, 0] + w / 2 - side / 2
    out[:, 1] = boxes[:, 1] + h / 2 - side / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply a stage's box regression (offsets in units of the box's size, +1 pixel convention)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.clone()
    out[:, :4] = boxes[:, :4] + reg * torch.stack([w, h, w, h], 1)
    return out


def _patches(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Each box cut out of the 1 x 3 x H x W image (clipped to it), area-resized to ``size``."""
    _, _, h, w = image.shape
    b = boxes[:, :4].trunc().int().tolist()
    out = []
    for x0, y0, x1, y1 in b:
        x0, y0, x1, y1 = max(x0, 1), max(y0, 1), min(x1, w), min(y1, h)
        patch = image[:, :, y0 - 1 : y1, x0 - 1 : x1]
        if patch.shape[2] == 0 or patch.shape[3] == 0:
            patch = image[:, :, :1, :1]  # a box wholly outside: scored, then dropped
        out.append(F.interpolate(patch, size=(size, size), mode="area"))
    return torch.cat(out)


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, overlap: float) -> torch.Tensor:
    """Non-maximum suppression by intersection over the smaller box (MTCNN's last stage)."""
    order = torch.argsort(scores, descending=True).tolist()
    b = boxes.tolist()
    keep: list[int] = []
    for i in order:
        x0, y0, x1, y1 = b[i]
        area_i = (x1 - x0 + 1) * (y1 - y0 + 1)
        for j in keep:
            u0, v0, u1, v1 = b[j]
            iw = max(0.0, min(x1, u1) - max(x0, u0) + 1)
            ih = max(0.0, min(y1, v1) - max(y0, v0) + 1)
            if iw * ih / min(area_i, (u1 - u0 + 1) * (v1 - v0 + 1)) > overlap:
                break
        else:
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def _proposals(pnet: _Net, image: torch.Tensor) -> torch.Tensor:
    """P-Net over the image pyramid: candidate boxes (x0, y0, x1, y1, score, 4 regressions)."""
    _, _, h, w = image.shape
    scale = 12.0 / MIN_FACE
    side = min(h, w) * scale
    found = []
    while side >= 12:
        resized = F.interpolate(image, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
        prob, reg = pnet(_normalise(resized))
        score = torch.softmax(prob, 1)[0, 1]
        ys, xs = torch.nonzero(score >= THRESHOLDS[0], as_tuple=True)
        if len(ys):
            cells = torch.stack([xs, ys], 1).to(image.dtype)
            q1 = ((2 * cells + 1) / scale).floor()
            q2 = ((2 * cells + 12) / scale).floor()
            boxes = torch.cat([q1, q2, score[ys, xs, None], reg[0, :, ys, xs].T], 1)
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        scale *= PYRAMID_FACTOR
        side *= PYRAMID_FACTOR
    if not found:
        return torch.zeros(0, 9)
    boxes = torch.cat(found)
    boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
    w_, h_ = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    refined = boxes[:, :4] + boxes[:, 5:9] * torch.stack([w_, h_, w_, h_], 1)
    return _square(torch.cat([refined, boxes[:, 4:5]], 1))


def detect(image_rgb: np.ndarray) -> np.ndarray:
    """All faces in an H x W x 3 RGB photo as N x 15 rows: box x, y, w, h; 5 landmarks; score.

    The layout is YuNet's (:meth:`veilbench.data.align.FaceAligner.detect`), landmarks in the
    same order (image-left eye first, nose, image-left mouth corner first).
    """
    pnet, rnet, onet = _networks()
    with _one_thread(), torch.no_grad():
        image = torch.from_numpy(np.ascontiguousarray(image_rgb, np.float32)).permute(2, 0, 1)[None]
        boxes = _proposals(pnet, image)
        if len(boxes):  # R-Net: rescore and refine
            prob, reg = rnet(_normalise(_patches(image, boxes, 24)))
            score = torch.softmax(prob, 1)[:, 1]
            ok = score > THRESHOLDS[1]
            boxes, reg = torch.cat([boxes[ok, :4], score[ok, None]], 1), reg[ok]
            keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
            boxes = _square(_regress(boxes[keep], reg[keep]))
        if not len(boxes):
            return np.zeros((0, 15), np.float32)
        prob, reg, points = onet(_normalise(_patches(image, boxes, 48)))  # O-Net: landmarks
        score = torch.softmax(prob, 1)[:, 1]
        ok = score > THRESHOLDS[2]
        boxes, reg, points = torch.cat([boxes[ok, :4], score[ok, None]], 1), reg[ok], points[ok]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        xs = w[:, None] * points[:, :5] + boxes[:, 0:1] - 1
        ys = h[:, None] * points[:, 5:] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes[:, :4], boxes[:, 4], 0.7) if len(boxes) else torch.zeros(0, dtype=int)
        boxes, xs, ys = boxes[keep], xs[keep], ys[keep]
    out = np.zeros((len(boxes), 15), np.float32)
    out[:, 0:2] = boxes[:, 0:2].numpy()
    out[:, 2:4] = (boxes[:, 2:4] - boxes[:, 0:2]).numpy()
    out[:, 4:14] = torch.stack([xs, ys], 2).reshape(len(boxes), 10).numpy()
    out[:, 14] = boxes[:, 4].numpy()
    return out
