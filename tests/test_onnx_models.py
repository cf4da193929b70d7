"""ONNX face models: the real SFace (torch vs onnxruntime) and a small generated ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from veilbench.data.align import FaceAligner
from veilbench.data.images import load_rgb
from veilbench.errors import ModelInputError, WeightsError
from veilbench.models.cards import SFACE_INPUT, sface_card
from veilbench.models.onnx_model import (
    OnnxRuntimeEmbedder,
    create_onnx_model,
    detect_input_spec,
    load_onnx,
    onnx_to_torch,
)
from veilbench.models.sface import create_sface
from veilbench.weights import SFACE

PEOPLE = ("AJ_Cook", "Aaron_Sorkin", "Abdullah_Gul")


@pytest.fixture(scope="module")
def sface():
    torch.set_num_threads(1)
    try:
        return create_sface()
    except WeightsError as exc:
        pytest.skip(f"SFace weights unavailable: {exc}")


@pytest.fixture(scope="module")
def crops(lfw_dev: Path) -> tuple[torch.Tensor, list[str]]:
    """Two real photos of each of three people, aligned to canonical N x 3 x 144 x 144."""
    aligner = FaceAligner()
    images, names = [], []
    for name in PEOPLE:
        for photo in sorted((lfw_dev / name).glob("*.jpg"))[:2]:
            images.append(aligner.align(load_rgb(photo)).crop)
            names.append(name)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), names


def _tiny_onnx(path: Path, batch: int | str, weights_as_inputs: bool) -> np.ndarray:
    """A 1x1 conv + global average pool 'embedder' on 3 x 8 x 8 input; returns its weight."""
    weight = np.arange(12, dtype=np.float32).reshape(4, 3, 1, 1) / 10
    init = numpy_helper.from_array(weight, "w")
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 8, 8])]
    if weights_as_inputs:  # as MXNet exports do
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 1, 1]))
    nodes = [
        helper.make_node("Conv", ["data", "w"], ["c"]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["emb"]),
    ]
    out = helper.make_tensor_value_info("emb", TensorProto.FLOAT, [batch, 4])
    graph = helper.make_graph(nodes, "tiny", inputs, [out], initializer=[init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weight


@pytest.mark.parametrize("batch", [1, "N"])
def test_runtime_embedder_loops_over_fixed_batch_size(tmp_path, batch):
    path = tmp_path / "tiny.onnx"
    weight = _tiny_onnx(path, batch, weights_as_inputs=True)
    runtime = OnnxRuntimeEmbedder(path)
    assert runtime.batch_size == (1 if batch == 1 else None)
    x = np.random.default_rng(0).normal(size=(5, 3, 8, 8)).astype(np.float32)
    expected = x.mean((2, 3)) @ weight[:, :, 0, 0].T
    np.testing.assert_allclose(runtime(x), expected, rtol=1e-5, atol=1e-5)


def test_initializers_listed_as_inputs_are_dropped(tmp_path):
    path = tmp_path / "tiny.onnx"
    _tiny_onnx(path, 1, weights_as_inputs=True)
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["data", "w"]
    assert [i.name for i in load_onnx(path).graph.input] == ["data"]
    module = onnx_to_torch(path)  # would otherwise expect the weight as a second argument
    assert module(torch.zeros(3, 3, 8, 8)).shape == (3, 4)  # batches despite the file's 1


def test_generic_onnx_face_model_matches_runtime_and_detects_input(tmp_path):
    path = tmp_path / "tiny.onnx"
    _tiny_onnx(path, 1, weights_as_inputs=False)
    model = create_onnx_model(path, name="tiny")
    spec = model.card.input
    # No Sub/Mul at the top of the graph: insightface's (x - 127.5) / 127.5, RGB.
    assert (spec.size, spec.channels, spec.mean[0], spec.std[0]) == (8, "RGB", 127.5, 127.5)
    assert model.card.embedding_size == 4 and model.card.weights[0]["name"] == "tiny.onnx"
    x = torch.rand(3, 3, 144, 144) * 255
    torch.testing.assert_close(model(x), model.forward_runtime(x), rtol=1e-5, atol=1e-5)
    assert not any(p.requires_grad for p in model.parameters())


def test_missing_or_broken_onnx_file_raises_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        create_onnx_model(tmp_path / "absent.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(WeightsError, match="broken.onnx"):
        create_onnx_model(broken)


@pytest.mark.slow
def test_sface_input_convention_is_detected_from_its_graph(sface):
    detected = detect_input_spec(load_onnx(sface.onnx_path))
    assert (detected.mean, detected.std) == (SFACE_INPUT.mean, SFACE_INPUT.std)
    assert sface.card.to_dict() == sface_card().to_dict()
    assert sface.card.weights[0]["sha256"] == SFACE.sha256


@pytest.mark.slow
def test_sface_torch_matches_onnxruntime_on_real_crops(sface, crops):
    x, _ = crops
    with torch.no_grad():
        white = sface(x)
    black = sface.forward_runtime(x)
    cosine = (white * black).sum(1)
    assert white.shape == (len(x), 128)
    assert cosine.min().item() >= 1 - 1e-4, cosine


@pytest.mark.slow
def test_sface_separates_real_identities(sface, crops):
    x, names = crops
    with torch.no_grad():
        sim = sface(x) @ sface(x).T
    same = np.equal.outer(names, names) & ~np.eye(len(names), dtype=bool)
    diff = ~np.equal.outer(names, names)
    assert sim[torch.from_numpy(same)].min() > sim[torch.from_numpy(diff)].max()


@pytest.mark.slow
def test_sface_input_gradients_are_finite_and_nonzero(sface, crops):
    x = crops[0][:2].clone().requires_grad_(True)
    emb = sface(x)
    (emb[0] * emb[1]).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0 and (x.grad[0] != 0).float().mean() > 0.5


@pytest.mark.slow
def test_wrong_input_shapes_raise_model_input_error(sface):
    with pytest.raises(ModelInputError, match="144 x 144"):
        sface(torch.zeros(1, 3, 112, 112))
    with pytest.raises(ModelInputError, match=r"N x 3 x 112 x 112, got \(2, 3, 100, 100\)"):
        sface.runtime(np.zeros((2, 3, 100, 100), np.float32))
    with pytest.raises(ModelInputError):
        sface.runtime(np.zeros((3, 112, 112), np.float32))
