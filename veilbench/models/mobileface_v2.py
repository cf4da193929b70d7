"""MobileFace Identification V2 (MXNet, 256-d, MS1M) as a torch network built from its symbol.

The model ships as an MXNet symbol JSON plus a ``.params`` file (read with numpy,
:mod:`veilbench.models.mxnet_params`). :class:`SymbolNet` executes the symbol's graph in torch,
honouring each node's attributes where MXNet's defaults differ from torch's: BatchNorm ``eps``
(MXNet default 1e-3, torch 1e-5) and ``fix_gamma`` (MXNet default True: gamma taken as 1),
convolution ``num_group``, ``pad``, ``stride``, ``dilate`` and ``no_bias``; ReLU6 is the
graph's ``_maximum_scalar(0)`` then ``_minimum_scalar(6)``, i.e. a clip. The graph starts
with its own ``(x - 127.5) * 0.0078125``, so the model takes [0, 255] pixels.

Input: the 112 x 112 insightface 5-point crop (the model was trained on MS1M-refine-v2 crops,
insightface alignment), RGB (measured on lfw-dev, see ``MOBILEFACE_INPUT``).
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from veilbench.errors import WeightsError
from veilbench.models.base import FaceModel, FaceSpace
from veilbench.models.cards import mobileface_v2_card
from veilbench.models.mxnet_params import read_params
from veilbench.weights import MOBILEFACE_V2_PARAMS, MOBILEFACE_V2_SYMBOL, resolve

_SCALAR_OPS = {
    "_minus_scalar",
    "_mul_scalar",
    "_plus_scalar",
    "_div_scalar",
    "_maximum_scalar",
    "_minimum_scalar",
}


def _attrs(node: dict) -> dict[str, str]:
    # MXNet 1.x writes "attrs"; 0.x wrote "attr" or "param".
    return node.get("attrs") or node.get("attr") or node.get("param") or {}


def _tuple(value: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    if value is None:
        return default
    parsed = ast.literal_eval(value)
    return tuple(parsed) if isinstance(parsed, (tuple, list)) else (int(parsed),) * len(default)


def _bool(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() in ("true", "1")


class MxBatchNorm(nn.Module):
    """MXNet BatchNorm in inference: running statistics, its own eps and fix_gamma."""

    def __init__(self, channels: int, eps: float, fix_gamma: bool):
        super().__init__()
        self.eps, self.fix_gamma = eps, fix_gamma
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.ones_like(self.weight) if self.fix_gamma else self.weight
        return F.batch_norm(
            x, self.running_mean, self.running_var, weight, self.bias, training=False, eps=self.eps
        )


class SymbolNet(nn.Module):
    """An MXNet symbol graph (the ops a CNN face recogniser uses) executed in torch."""

    def __init__(self, symbol: dict, arrays: dict[str, np.ndarray]):
        super().__init__()
        self.nodes = symbol["nodes"]
        self.heads = [h[0] for h in symbol["heads"]]
        self.layers = nn.ModuleDict()
        params = {k.split(":", 1)[1]: v for k, v in arrays.items()}
        used: set[str] = set()
        for node in self.nodes:
            if node["op"] in ("Convolution", "BatchNorm", "FullyConnected"):
                self.layers[node["name"]] = self._layer(node, params, used)
        unused = sorted(set(params) - used)
        if unused:
            raise WeightsError(f"params not used by the symbol: {unused[:3]}; wrong file pair")

    def _inputs(self, node: dict, params: dict[str, np.ndarray], used: set[str]) -> list:
        names = [self.nodes[i]["name"] for i, *_ in node["inputs"][1:]]
        missing = [n for n in names if n not in params]
        if missing:
            raise WeightsError(f"symbol node {node['name']} needs {missing}; not in the .params")
        used.update(names)
        return [torch.from_numpy(np.array(params[n], np.float32)) for n in names]

    def _layer(self, node: dict, params: dict[str, np.ndarray], used: set[str]) -> nn.Module:
        a, op = _attrs(node), node["op"]
        tensors = self._inputs(node, params, used)
        if op == "Convolution":
            kernel = _tuple(a.get("kernel"), (1, 1))
            weight = tensors[0]
            conv = nn.Conv2d(
                weight.shape[1] * int(a.get("num_group", 1)),
                int(a["num_filter"]),
                kernel,
                stride=_tuple(a.get("stride"), (1, 1)),
                padding=_tuple(a.get("pad"), (0, 0)),
                dilation=_tuple(a.get("dilate"), (1, 1)),
                groups=int(a.get("num_group", 1)),
                bias=not _bool(a.get("no_bias"), False),
            )
            module: nn.Module = conv
        elif op == "FullyConnected":
            weight = tensors[0]
            module = nn.Linear(
                weight.shape[1], weight.shape[0], bias=not _bool(a.get("no_bias"), False)
            )
        else:  # BatchNorm: gamma, beta, moving mean, moving var
            module = MxBatchNorm(
                len(tensors[0]), float(a.get("eps", 1e-3)), _bool(a.get("fix_gamma"), True)
            )
            keys = ["weight", "bias", "running_mean", "running_var"]
            module.load_state_dict(dict(zip(keys, tensors, strict=True)))
            return module
        state = dict(zip(["weight", "bias"], tensors, strict=False))
        module.load_state_dict(state)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {}
        for i, node in enumerate(self.nodes):
            op, a = node["op"], _attrs(node)
            if op == "null":
                if i == 0 or node["name"] == "data":
                    values[i] = x
                continue
            args = [values[j] for j, *_ in node["inputs"] if j in values]
            if node["name"] in self.layers:
                values[i] = self.layers[node["name"]](args[0])
            elif op in _SCALAR_OPS:
                values[i] = _scalar_op(op, args[0], float(a["scalar"]))
            elif op == "elemwise_add":
                values[i] = args[0] + args[1]
            elif op == "Flatten":
                values[i] = args[0].flatten(1)
            else:
                raise WeightsError(f"MXNet op {op!r} (node {node['name']}) is not supported")
        return values[self.heads[0]]


def _scalar_op(op: str, x: torch.Tensor, s: float) -> torch.Tensor:
    if op == "_minus_scalar":
        return x - s
    if op == "_plus_scalar":
        return x + s
    if op == "_mul_scalar":
        return x * s
    if op == "_div_scalar":
        return x / s
    return x.clamp(min=s) if op == "_maximum_scalar" else x.clamp(max=s)


def load_symbol_net(symbol_path: str | os.PathLike, params_path: str | os.PathLike) -> SymbolNet:
    """An MXNet symbol JSON and its ``.params`` as a torch module in eval mode."""
    try:
        symbol = json.loads(Path(symbol_path).read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read MXNet symbol {symbol_path}: {exc}") from exc
    return SymbolNet(symbol, read_params(params_path)).eval()


def create_mobileface_v2(space: FaceSpace | None = None, **_: Any) -> FaceModel:
    """MobileFace V2 as a differentiable, frozen FaceModel."""
    net = load_symbol_net(resolve(MOBILEFACE_V2_SYMBOL), resolve(MOBILEFACE_V2_PARAMS))
    net.requires_grad_(False)
    return FaceModel(net, mobileface_v2_card(), space).eval()
