"""MobileFaceNet-CASIA and MobileFace V2 on real LFW crops, against references outside the models.

The pinned embeddings in ``data/mobile_models_embeddings.json`` were computed once by the
references below, never by veilbench's model modules:

- ``casia_reference``: the published MobileFaceNet (Chen et al. 2018, as in its authors'
  repository) written as plain functional torch over the checkpoint's state dict;
- ``symbol_reference``: a plain numpy execution of MobileFace V2's MXNet symbol JSON over the
  ``.params`` arrays (convolutions by sliding windows, MXNet's BatchNorm defaults).

Both take the model's input sliced straight out of the canonical crop (the crop boxes fall on
whole pixels), so the differentiable warp is checked too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import shared_weights_dir
from veilbench.data.align import center_crop
from veilbench.data.images import load_rgb
from veilbench.models.base import FaceSpace, InputSpec
from veilbench.models.mxnet_params import read_params
from veilbench.weights import MOBILEFACE_V2_PARAMS, MOBILEFACE_V2_SYMBOL, MOBILEFACENET_CASIA

PINNED = Path(__file__).parent / "data" / "mobile_models_embeddings.json"
PHOTOS = (
    "Aaron_Peirsol/Aaron_Peirsol_0001",
    "Aaron_Peirsol/Aaron_Peirsol_0002",
    "Aaron_Sorkin/Aaron_Sorkin_0001",
    "Aaron_Sorkin/Aaron_Sorkin_0002",
)


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    path = shared_weights_dir()
    if not path.is_dir():
        pytest.skip(f"weight files not found at {path} (set VEILBENCH_SHARED_WEIGHTS)")
    return path


@pytest.fixture(scope="module")
def canonical(lfw_dev: Path) -> np.ndarray:
    """Fixed-box canonical crops (N x 144 x 144 x 3, RGB float) of four LFW photos."""
    return np.stack([center_crop(load_rgb(lfw_dev / f"{p}.jpg")).crop for p in PHOTOS])


@pytest.fixture(scope="module")
def models(weights_dir: Path):
    from veilbench.models.mobileface_v2 import create_mobileface_v2
    from veilbench.models.mobilefacenet_casia import create_mobilefacenet_casia

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEILBENCH_WEIGHTS", str(weights_dir))
        return {
            "mobilefacenet_casia": create_mobilefacenet_casia(),
            "mobilefacenet_casia_flip": create_mobilefacenet_casia(flip=True),
            "mobileface_v2": create_mobileface_v2(),
        }


# --- references (never import veilbench.models.mobilefacenet_casia / mobileface_v2) ----------


def casia_reference(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Published MobileFaceNet on 112 x 96 input, functional, over the authors' state dict."""

    def bn(x, p):
        return F.batch_norm(
            x,
            state[p + ".running_mean"],
            state[p + ".running_var"],
            state[p + ".weight"],
            state[p + ".bias"],
            False,
            0.0,
            1e-5,
        )

    def block(x, p, stride=1, pad=0, groups=1, act=True):  # ConvBlock: conv, bn, prelu
        x = bn(F.conv2d(x, state[p + ".conv.weight"], None, stride, pad, 1, groups), p + ".bn")
        return F.prelu(x, state[p + ".prelu.weight"]) if act else x

    x = block(x, "conv1", 2, 1)
    x = block(x, "dw_conv1", 1, 1, groups=64)
    i, cin = 0, 64
    for t, c, n, s in [
        [2, 64, 5, 2],
        [4, 128, 1, 2],
        [2, 128, 6, 1],
        [4, 128, 1, 2],
        [2, 128, 2, 1],
    ]:
        for j in range(n):
            stride = s if j == 0 else 1
            p = f"blocks.{i}.conv."
            y = F.prelu(bn(F.conv2d(x, state[p + "0.weight"]), p + "1"), state[p + "2.weight"])
            y = F.conv2d(y, state[p + "3.weight"], None, stride, 1, 1, cin * t)
            y = F.prelu(bn(y, p + "4"), state[p + "5.weight"])
            y = bn(F.conv2d(y, state[p + "6.weight"]), p + "7")
            x = x + y if stride == 1 and cin == c else y
            i, cin = i + 1, c
    x = block(x, "conv2")
    x = block(x, "linear7", groups=512, act=False)
    return block(x, "linear1", act=False).flatten(1)


def _np_conv(x, w, b, stride, pad, groups):
    """One image C x H x W, weights O x C/g x kh x kw: grouped convolution by sliding windows."""
    c = x.shape[0]
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win[:, :: stride[0], :: stride[1]]  # C x Ho x Wo x kh x kw
    ho, wo = win.shape[1:3]
    win = win.reshape(groups, c // groups, ho, wo, kh, kw)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("gchwij,gocij->gohw", win, wg, optimize=True).reshape(o, ho, wo)
    return out if b is None else out + b[:, None, None]


def symbol_reference(symbol: dict, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """MXNet symbol executed in numpy (float64), one image at a time."""
    arr = {k.split(":", 1)[1]: v.astype(np.float64) for k, v in params.items()}
    nodes = symbol["nodes"]
    outs = []
    for image in x.astype(np.float64):
        val: dict[int, np.ndarray] = {0: image}
        for i, node in enumerate(nodes):
            op, a = node["op"], node.get("attrs", {})
            ins = [val[j] for j, *_ in node["inputs"] if j in val]
            names = [nodes[j]["name"] for j, *_ in node["inputs"] if j not in val]
            if op == "null":
                continue
            if op == "_minus_scalar":
                val[i] = ins[0] - float(a["scalar"])
            elif op == "_mul_scalar":
                val[i] = ins[0] * float(a["scalar"])
            elif op == "_maximum_scalar":
                val[i] = np.maximum(ins[0], float(a["scalar"]))
            elif op == "_minimum_scalar":
                val[i] = np.minimum(ins[0], float(a["scalar"]))
            elif op == "elemwise_add":
                val[i] = ins[0] + ins[1]
            elif op == "Flatten":
                val[i] = ins[0].reshape(-1)
            elif op == "FullyConnected":
                val[i] = arr[names[0]] @ ins[0]
            elif op == "Convolution":
                w = arr[names[0]]
                b = arr[names[1]] if len(names) > 1 else None
                pad = eval(a.get("pad", "(0, 0)"))
                stride = eval(a.get("stride", "(1, 1)"))
                val[i] = _np_conv(ins[0], w, b, stride, pad, int(a.get("num_group", 1)))
            elif op == "BatchNorm":
                g, beta, mean, var = (arr[n] for n in names)
                if a.get("fix_gamma", "True") == "True":
                    g = np.ones_like(g)
                eps = float(a.get("eps", 1e-3))  # MXNet's default
                shape = (-1,) + (1,) * (ins[0].ndim - 1)
                val[i] = (ins[0] - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
                val[i] = val[i] * g.reshape(shape) + beta.reshape(shape)
            else:
                raise AssertionError(f"op {op} not in the reference")
        outs.append(val[symbol["heads"][0][0]])
    return np.stack(outs)


def reference_embeddings(canonical: np.ndarray, weights_dir: Path) -> dict[str, np.ndarray]:
    """Raw embeddings of both references on the four crops (what the pinned file holds)."""
    m = FaceSpace().margin
    chw = canonical.transpose(0, 3, 1, 2)
    casia_in = torch.from_numpy((chw[:, :, m : m + 112, m + 8 : m + 104] - 127.5) / 128).float()
    ckpt = torch.load(weights_dir / MOBILEFACENET_CASIA.name, map_location="cpu", weights_only=True)
    with torch.no_grad():
        casia = casia_reference(ckpt["net_state_dict"], casia_in).numpy()
    symbol = json.loads((weights_dir / MOBILEFACE_V2_SYMBOL.name).read_text())
    params = read_params(weights_dir / MOBILEFACE_V2_PARAMS.name)
    mface = symbol_reference(symbol, params, chw[:, :, m : m + 112, m : m + 112])
    return {"mobilefacenet_casia": casia, "mobileface_v2": mface}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# --- tests ----------------------------------------------------------------------------------


def test_pinned_values_come_from_the_references(canonical, weights_dir):
    pinned = json.loads(PINNED.read_text())
    assert pinned["photos"] == list(PHOTOS)
    for name, ref in reference_embeddings(canonical, weights_dir).items():
        np.testing.assert_allclose(ref, np.array(pinned[name]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["mobilefacenet_casia", "mobileface_v2"])
def test_model_matches_pinned_reference_embeddings(models, canonical, name):
    pinned = _unit(np.array(json.loads(PINNED.read_text())[name]))
    with torch.no_grad():
        got = models[name](torch.from_numpy(canonical).permute(0, 3, 1, 2).float()).numpy()
    cos = (got * pinned).sum(1)
    assert cos.min() > 1 - 1e-5, cos
    # and they tell the two people apart: same-person cosine above every cross-person one
    sim = got @ got.T
    assert min(sim[0, 1], sim[2, 3]) > sim[:2, 2:].max() + 0.2


def test_flip_concatenated_embedding_is_256_d_and_symmetric(models, canonical):
    x = torch.from_numpy(canonical).permute(0, 3, 1, 2).float()
    m = models["mobilefacenet_casia_flip"]
    with torch.no_grad():
        e, e_mirror = m(x), m(x.flip(3))
    assert e.shape == (4, 256) and m.card.flip and m.card.embedding_size == 256
    # the mirrored crop's embedding is the same two halves swapped
    torch.testing.assert_close(
        e, torch.cat([e_mirror[:, 128:], e_mirror[:, :128]], 1), atol=1e-4, rtol=1e-4
    )


def test_casia_input_is_112_by_96_and_gradients_reach_pixels(models, canonical):
    m = models["mobilefacenet_casia"]
    assert m.card.input.shape == (112, 96)
    x = torch.from_numpy(canonical[:1]).permute(0, 3, 1, 2).float().requires_grad_(True)
    assert m.preprocess(x).shape == (1, 3, 112, 96)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_input_spec_refuses_a_box_that_would_stretch_faces():
    from veilbench.errors import ModelInputError

    with pytest.raises(ModelInputError, match="aspect ratio"):
        InputSpec(size=112, width=96, crop=(0.0, 0.0, 112.0, 112.0))


def test_truncated_params_file_is_one_clear_error(tmp_path, weights_dir):
    from veilbench.errors import WeightsError

    bad = tmp_path / "x.params"
    bad.write_bytes((weights_dir / MOBILEFACE_V2_PARAMS.name).read_bytes()[:5000])
    with pytest.raises(WeightsError, match="truncated"):
        read_params(bad)


if __name__ == "__main__":  # regenerate the pinned file: python -m tests.test_mobile_models
    from tests.conftest import shared_data_dir

    crops = np.stack(
        [center_crop(load_rgb(shared_data_dir() / "lfw-dev" / f"{p}.jpg")).crop for p in PHOTOS]
    )
    refs = reference_embeddings(crops, shared_weights_dir())
    data = {"photos": list(PHOTOS)}
    data.update({k: np.round(v, 6).tolist() for k, v in refs.items()})
    PINNED.write_text(json.dumps(data) + "\n")


def test_all_selects_real_models_only_and_list_shows_accuracy_and_weights(shared_weights):
    from click.testing import CliRunner

    from veilbench.commands import build_cli
    from veilbench.plugins import get_plugins, reset_plugins

    reset_plugins()
    try:
        registry = get_plugins().registries["models"]
        chosen = [e.name for e in registry.select("all")]
        assert {"mobilefacenet_casia", "mobileface_v2", "sface"} <= set(chosen)
        assert "arcface_r50" in registry.names()  # registered, in `all` once its pack is on disk
        if "example_thumbnail" in registry:  # a random projection: only when named
            assert "example_thumbnail" not in chosen
            assert [e.name for e in registry.select("example_thumbnail")] == ["example_thumbnail"]
        listed = CliRunner().invoke(build_cli(), ["list", "models"]).output
        line = next(x for x in listed.splitlines() if x.startswith("mobileface_v2 "))
        assert "LFW 9" in line and "weights on disk" in line
    finally:
        reset_plugins()
