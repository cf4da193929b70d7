"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The network is the one from dlib's ``dnn_face_recognition_ex.cpp``: a 150 x 150 RGB chip, 29
convolutions in residual blocks, affine layers where training used batch norm, global average
pooling and a 128-d linear layer without bias. The weights are read straight from dlib's own
binary serialization (no dlib needed), so the port is differentiable end to end.

dlib's serialization, as read here (``dlib/serialize.h``, ``dlib/dnn/{core,layers,tensor}.h``):

* an integer is a control byte (bit 7: negative, low 4 bits: byte count) then that many
  little-endian magnitude bytes; a bool is the ASCII byte ``'1'`` or ``'0'``; a string is its
  length then its bytes; a float is a mantissa then an exponent (both integers).
* a tensor is version 2, num_samples, k, nr, nc, then raw little-endian float32; an alias tensor
  (a view into a layer's params) is version 1 and the four sizes, no data.
* a network is written outermost layer first, each wrapper writing its version then recursing
  into its subnetwork *before* writing its own layer details, so the file holds every wrapper's
  version, then the input layer, then each layer's details from the input upwards (each
  followed by its wrapper's bookkeeping: three bools and some empty tensors).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from veilbench.errors import WeightsError
from veilbench.models.base import FaceModel, FaceSpace
from veilbench.models.cards import DLIB_MEANS, dlib_resnet_card
from veilbench.weights import DLIB_RESNET, resolve

# (filters, downsample) per residual block, from the input upwards: alevel4 .. alevel0.
_BLOCKS: tuple[tuple[int, bool], ...] = (
    *[(32, False)] * 3,
    (64, True), *[(64, False)] * 3,
    (128, True), *[(128, False)] * 2,
    (256, True), *[(256, False)] * 2,
    (256, True),
)  # fmt: skip


class Affine(nn.Module):
    """dlib's ``affine`` layer: a per-channel scale and shift (batch norm frozen at export)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum of two tensors, the smaller zero-padded at the end of each dim."""
    if a.shape == b.shape:
        return a + b
    shape = [max(p, q) for p, q in zip(a.shape, b.shape, strict=True)]
    return _pad_to(a, shape) + _pad_to(b, shape)


def _pad_to(x: torch.Tensor, shape: list[int]) -> torch.Tensor:
    # F.pad takes (before, after) pairs from the last dimension backwards; batch sizes agree.
    pads: list[int] = []
    for have, want in zip(reversed(x.shape[1:]), reversed(shape[1:]), strict=True):
        pads += [0, want - have]
    return F.pad(x, pads)


class ResBlock(nn.Module):
    """``ares`` / ``ares_down``: conv-affine-relu-conv-affine plus the (pooled) input, relu."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        # dlib's con_ pads kernel/2 only at stride 1; strided convs and pools are unpadded.
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.aff1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.aff2 = Affine(cout)
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        # Channels grow (32 -> 64 ...) and, at 8 x 8, the strided conv gives 3 x 3 where the
        # pool gives 4 x 4: dlib zero-pads the smaller operand rather than projecting it.
        return F.relu(add_prev(y, skip))


class DlibResNet(nn.Module):
    """dlib's 29-conv face ResNet: normalised N x 3 x 150 x 150 -> raw 128-d descriptors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.aff1 = Affine(32)
        blocks, cin = [], 32
        for cout, down in _BLOCKS:
            blocks.append(ResBlock(cin, cout, down))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.aff1(self.conv1(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


class _Reader:
    """Reads dlib's serialization primitives from a byte buffer."""

    def __init__(self, data: bytes, path: Path):
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> WeightsError:
        return WeightsError(
            f"{self.path} is not dlib's face recognition ResNet ({what} at byte {self.pos}); "
            "use dlib_face_recognition_resnet_model_v1.dat (`veilbench weights fetch "
            "dlib_face_recognition_resnet_model_v1.dat`)"
        )

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail("file ends early")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise self.fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def bool(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool {byte!r}")
        return byte == b"1"

    def string(self) -> str:
        return self.take(self.int()).decode("latin-1")

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return math.ldexp(mantissa, exponent)

    def tensor(self) -> np.ndarray:
        if (version := self.int()) != 2:
            raise self.fail(f"tensor version {version}, expected 2")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape).copy()

    def alias(self) -> tuple[int, int, int, int]:
        if (version := self.int()) != 1:
            raise self.fail(f"alias tensor version {version}, expected 1")
        n, k, nr, nc = (self.int() for _ in range(4))
        return n, k, nr, nc

    def expect(self, value: int, what: str) -> None:
        if (got := self.int()) != value:
            raise self.fail(f"{what} is {got}, expected {value}")


def _layer_order() -> tuple[list[str], list[str]]:
    """The wrappers (outermost first) and the layer details (input first) of dlib's net."""
    wrappers: list[str] = ["fc", "avg_pool_everything"]
    for _, down in reversed(_BLOCKS):  # outermost block first
        if down:  # relu<add_prev2<avg_pool<skip1<tag2<block<tag1<...>>>>>>>
            wrappers += ["layer"] * 3 + ["skip", "tag"] + ["layer"] * 5 + ["tag"]
        else:  # relu<add_prev1<block<tag1<...>>>>
            wrappers += ["layer"] * 7 + ["tag"]
    wrappers += ["layer"] * 3  # max_pool<relu<affine<con<input>>>>, con wraps the input
    details: list[str] = ["con", "affine", "relu", "max_pool"]
    for _, down in _BLOCKS:
        details += ["con", "affine", "relu", "con", "affine"]
        details += ["avg_pool", "add_prev", "relu"] if down else ["add_prev", "relu"]
    details += ["avg_pool", "fc"]
    return wrappers, details


def _read_details(r: _Reader) -> tuple[str, dict]:
    """One layer's details: its kind and what the port needs from it."""
    name = r.string()
    if name in ("con_4", "con_5"):
        params = r.tensor().ravel()
        num_filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
        filters, biases = r.alias(), r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        if name == "con_5" and not r.bool():
            raise r.fail("a convolution without bias")
        n_w = int(np.prod(filters))
        if n_w + int(np.prod(biases)) != params.size or filters[0] != num_filters:
            raise r.fail("convolution params do not match their shapes")
        return "con", {
            "weight": params[:n_w].reshape(filters),
            "bias": params[n_w:],
            "geometry": (nr, nc, sy, sx, py, px),
        }
    if name == "affine_":
        params = r.tensor().ravel()
        gamma, beta = r.alias(), r.alias()
        r.int()  # mode: per-channel (conv) or per-element (fc)
        k = int(np.prod(gamma))
        if k + int(np.prod(beta)) != params.size:
            raise r.fail("affine params do not match their shapes")
        return "affine", {"gamma": params[:k], "beta": params[k:]}
    if name == "relu_":
        return "relu", {}
    if name == "add_prev_":
        return "add_prev", {}
    if name in ("max_pool_2", "avg_pool_2"):
        return name.removesuffix("_2"), {"geometry": tuple(r.int() for _ in range(6))}
    if name == "fc_2":
        num_outputs, num_inputs = r.int(), r.int()
        params = r.tensor().ravel()
        weights, _ = r.alias(), r.alias()
        r.int()  # bias mode (checked through the param count)
        for _ in range(4):
            r.float()
        if params.size != num_inputs * num_outputs or weights[:2] != (num_inputs, num_outputs):
            raise r.fail("fc params do not match an fc without bias")
        return "fc", {"weight": params.reshape(num_inputs, num_outputs)}
    raise r.fail(f"unexpected layer {name!r}")


def _skip_bookkeeping(r: _Reader, tensors: int) -> None:
    # add_layer state after the details: setup/stale/disabled flags and scratch tensors.
    for _ in range(3):
        r.bool()
    for _ in range(tensors):
        r.tensor()


def read_dlib_resnet(path: str | Path) -> list[tuple[str, dict]]:
    """Parse the .dat file into its layers' details, input layer first."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"dlib ResNet weights not found at {path}; run `veilbench weights fetch "
            "dlib_face_recognition_resnet_model_v1.dat`"
        )
    r = _Reader(path.read_bytes(), path)
    r.expect(1, "loss layer version")
    if (loss := r.string()) != "loss_metric_2":
        raise r.fail(f"loss {loss!r}, expected 'loss_metric_2'")
    for _ in range(2):  # margin and distance threshold (training only)
        r.float()
    wrappers, expected = _layer_order()
    for kind in wrappers:
        if kind in ("tag", "skip"):
            r.expect(1, f"{kind} layer version")
        elif r.int() not in (1, 2):
            raise r.fail("unexpected layer version")
    input_version = r.int()
    if input_version not in (2, 3):
        raise r.fail(f"input layer version {input_version}")
    if (name := r.string()) != "input_rgb_image_sized":
        raise r.fail(f"input {name!r}, expected 'input_rgb_image_sized'")
    means = tuple(round(r.float(), 3) for _ in range(3))
    size = (r.int(), r.int())
    if means != DLIB_MEANS or size != (150, 150):
        raise r.fail(f"input means {means} / size {size}, expected {DLIB_MEANS} / 150 x 150")
    layers = []
    for i, want in enumerate(expected):
        kind, info = _read_details(r)
        if kind != want:
            raise r.fail(f"layer {i} is {kind}, expected {want}")
        layers.append((kind, info))
        # x_grad, cached_output, then params_grad (grad_final for the input's wrapper, which
        # since version 3 also stores the sample expansion factor)
        _skip_bookkeeping(r, 3)
        if i == 0 and input_version == 3:
            r.int()
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} unread bytes at the end")
    return layers


def _set_conv(conv: nn.Conv2d, info: dict) -> None:
    nr, nc, sy, sx, py, px = info["geometry"]
    want = (*conv.kernel_size, *conv.stride, *conv.padding)
    if (nr, nc, sy, sx, py, px) != want:
        raise WeightsError(f"dlib conv geometry {info['geometry']} does not match {want}")
    conv.weight.data.copy_(torch.from_numpy(info["weight"]))
    conv.bias.data.copy_(torch.from_numpy(info["bias"]))


def _set_affine(aff: Affine, info: dict) -> None:
    aff.gamma.data.copy_(torch.from_numpy(info["gamma"]))
    aff.beta.data.copy_(torch.from_numpy(info["beta"]))


def load_dlib_resnet(path: str | Path) -> nn.Module:
    """Build the port and load ``dlib_face_recognition_resnet_model_v1.dat`` into it (eval mode)."""
    layers = read_dlib_resnet(path)
    convs = iter(info for kind, info in layers if kind == "con")
    affines = iter(info for kind, info in layers if kind == "affine")
    net = DlibResNet()
    _set_conv(net.conv1, next(convs))
    _set_affine(net.aff1, next(affines))
    for block in net.blocks:
        _set_conv(block.conv1, next(convs))
        _set_affine(block.aff1, next(affines))
        _set_conv(block.conv2, next(convs))
        _set_affine(block.aff2, next(affines))
    fc = next(info for kind, info in layers if kind == "fc")
    net.fc.weight.data.copy_(torch.from_numpy(fc["weight"].T))  # dlib computes x @ W
    return net.eval()


def create_dlib_resnet(space: FaceSpace | None = None) -> FaceModel:
    """dlib's ResNet as a FaceModel on canonical crops (resolves, verifies, fetches weights)."""
    return FaceModel(load_dlib_resnet(resolve(DLIB_RESNET)), dlib_resnet_card(), space).eval()
