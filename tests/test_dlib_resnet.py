"""dlib's face ResNet: the PyTorch port against dlib itself, on real LFW faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from veilbench.errors import WeightsError
from veilbench.models.base import FaceSpace
from veilbench.models.cards import DLIB_CROP, DLIB_INPUT, DLIB_MEANS, dlib_resnet_card
from veilbench.models.dlib_resnet import (
    DlibResNet,
    add_prev,
    create_dlib_resnet,
    load_dlib_resnet,
)
from veilbench.weights import DLIB_RESNET, resolve

torch.set_num_threads(1)


def test_add_prev_zero_pads_the_smaller_operand() -> None:
    """dlib adds a 32-channel 3 x 3 tensor to a 64-channel 4 x 4 one as if zero-padded."""
    a = torch.ones(2, 64, 3, 3)
    b = torch.full((2, 32, 4, 4), 2.0)
    out = add_prev(a, b)
    assert out.shape == (2, 64, 4, 4)
    assert (out[:, :32, :3, :3] == 3).all()
    assert (out[:, 32:, :3, :3] == 1).all()
    assert (out[:, :32, 3, :] == 2).all() and (out[:, 32:, 3, :] == 0).all()


def test_random_weights_shapes() -> None:
    """Random weights: 29 convolutions, 150 x 150 in, 128 out (the 3x3-vs-4x4 merge included)."""
    net = DlibResNet()
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 29
    assert net(torch.randn(2, 3, 150, 150)).shape == (2, 128)


def test_input_spec_is_dlibs_pixel_transform() -> None:
    """FaceModel's normalisation with DLIB_INPUT is dlib's (pixel - mean) / 256."""
    x = torch.rand(1, 3, 150, 150) * 255
    spec = DLIB_INPUT
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    ours = (x / 255 * spec.scale - mean) / std
    torch.testing.assert_close(ours, (x - torch.tensor(DLIB_MEANS).view(1, 3, 1, 1)) / 256)
    assert spec.size == 150 and spec.channels == "RGB" and spec.crop == DLIB_CROP


def test_card() -> None:
    card = dlib_resnet_card()
    assert (card.name, card.architecture) == ("dlib_resnet", "dlib-resnet-29")
    assert card.embedding_size == 128
    assert card.licence == "CC0-1.0" and card.pretrained
    assert card.weights[0]["sha256"] == DLIB_RESNET.sha256
    assert card.to_dict()["input"]["crop"] == DLIB_CROP


def test_wrong_file_is_a_weights_error(tmp_path) -> None:
    bad = tmp_path / "not_dlib.dat"
    bad.write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(WeightsError, match="not dlib's face recognition ResNet"):
        load_dlib_resnet(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_dlib_resnet(tmp_path / "missing.dat")


@pytest.fixture(scope="module")
def model():
    """The real dlib ResNet as a FaceModel (skips where its weights cannot be had)."""
    try:
        return create_dlib_resnet()
    except WeightsError as exc:
        pytest.skip(f"dlib ResNet weights unavailable: {exc}")


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
            try:
                crops.append(aligner.align(load_rgb(photo)).crop)
            except WeightsError as exc:
                pytest.skip(f"YuNet weights unavailable: {exc}")
            labels.append(i)
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return x, torch.tensor(labels)


def test_real_weights_match_dlib(model, lfw_crops) -> None:
    """The port gives dlib's own descriptors on the same 150 x 150 chips of real faces."""
    dlib = pytest.importorskip("dlib", reason="dlib not installed (pip install dlib-bin)")
    x, _ = lfw_crops
    # dlib's chips: the DLIB_CROP box of each canonical crop, as uint8 like any dlib input.
    grid = model.grid.expand(len(x), -1, -1, -1)
    chips = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    chips = chips.round().clamp(0, 255).to(torch.uint8)
    rec = dlib.face_recognition_model_v1(str(resolve(DLIB_RESNET, fetch=False)))
    hwc = chips.permute(0, 2, 3, 1).contiguous().numpy()
    ref = np.stack([np.array(rec.compute_face_descriptor(chip)) for chip in hwc])
    norm = (chips.float() - torch.tensor(DLIB_MEANS).view(1, 3, 1, 1)) / 256
    with torch.no_grad():
        ours = model.backbone(norm).double().numpy()
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 1 - 1e-4
    assert np.abs(ours - ref).max() < 1e-4  # float32 rounding only (~3e-7 seen)


def test_real_weights_separate_lfw_identities(model, lfw_crops) -> None:
    """On canonical crops, same-person cosine is above different-person cosine."""
    x, labels = lfw_crops
    with torch.no_grad():
        emb = model(x)
    assert emb.shape == (len(x), 128)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(len(x)))
    cos = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    off_diag = ~torch.eye(len(x), dtype=torch.bool)
    # dlib's descriptors are not centred: different people still sit near cosine 0.85-0.9
    # (0.88 here, against 0.94 for the same person), so the gap is small but consistent.
    assert cos[same & off_diag].mean() - cos[~same].mean() > 0.03
    nearest = cos.masked_fill(~off_diag, -2).argmax(dim=1)
    assert (labels[nearest] == labels).all()


def test_real_weights_input_gradients(model, lfw_crops) -> None:
    """Gradients reach canonical pixels inside dlib's crop box, and only there."""
    x, _ = lfw_crops
    probe = x[:1].clone().requires_grad_(True)
    with torch.no_grad():
        target = model(x[3:4])
    (model(probe) * target).sum().backward()
    grad = probe.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    x0, y0, x1, y1 = FaceSpace().box_to_pixels(DLIB_CROP)
    inside = grad[0, :, int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2].abs().sum(0)
    assert (inside > 0).float().mean() > 0.9
    assert grad[0, :, : int(y0) - 1].abs().sum() == 0  # rows above the box are never sampled
    assert grad[0, :, :, : int(x0) - 1].abs().sum() == 0
