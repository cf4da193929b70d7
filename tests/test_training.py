"""Margin heads against their formulas, and a tiny real training run on LFW faces."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from veilbench.errors import ConfigError
from veilbench.models.base import FaceModel, InputSpec, ModelCard
from veilbench.models.checkpoints import create_architecture, load_checkpoint
from veilbench.training import ArcFaceHead, CosFaceHead, SoftmaxHead, create_head, train
from veilbench.training.train import load_face_folder, rank1

torch.set_num_threads(1)

COS = torch.tensor([[0.5, 0.2, -0.1], [0.1, -0.95, 0.3], [0.99, 0.0, -0.2]])
LABELS = torch.tensor([0, 1, 2])


def test_cosface_target_logit_is_s_times_cos_minus_m() -> None:
    head = CosFaceHead(4, 3)
    assert (head.s, head.m) == (64.0, 0.35)
    logits = head.margin_logits(COS, LABELS)
    for i, row in enumerate(COS):
        for j, c in enumerate(row.tolist()):
            want = 64.0 * (c - 0.35) if j == LABELS[i] else 64.0 * c
            assert logits[i, j].item() == pytest.approx(want, abs=1e-4)


def test_arcface_target_logit_is_s_times_cos_theta_plus_m_with_insightface_fallback() -> None:
    head = ArcFaceHead(4, 3)
    assert (head.s, head.m) == (64.0, 0.5)
    logits = head.margin_logits(COS, LABELS)
    # Row 0: cos 0.5 > cos(pi - m), so cos(theta + m).
    assert logits[0, 0].item() == pytest.approx(64 * math.cos(math.acos(0.5) + 0.5), abs=1e-4)
    # Row 1: cos -0.95 <= th = cos(pi - 0.5) = -0.878, so cos - sin(pi - m) * m.
    fallback = -0.95 - math.sin(math.pi - 0.5) * 0.5
    assert logits[1, 1].item() == pytest.approx(64 * fallback, abs=1e-4)
    # Row 2: cos -0.2, still above th: the margin applies.
    assert logits[2, 2].item() == pytest.approx(64 * math.cos(math.acos(-0.2) + 0.5), abs=1e-4)
    off_target = torch.ones_like(COS, dtype=torch.bool)
    off_target[torch.arange(3), LABELS] = False
    assert torch.allclose(logits[off_target], 64 * COS[off_target])


def test_arcface_easy_margin_leaves_negative_cosines_alone() -> None:
    head = ArcFaceHead(4, 3, easy_margin=True)
    logits = head.margin_logits(COS, LABELS)
    assert logits[2, 2].item() == pytest.approx(64 * -0.2, abs=1e-4)
    assert logits[0, 0].item() == pytest.approx(64 * math.cos(math.acos(0.5) + 0.5), abs=1e-4)


def test_arcface_gradient_is_finite_at_cos_one() -> None:
    cos = torch.tensor([[1.0, 0.0]], requires_grad=True)
    loss = F.cross_entropy(
        ArcFaceHead(4, 2).margin_logits(cos, torch.tensor([0])), torch.tensor([0])
    )
    loss.backward()
    assert torch.isfinite(cos.grad).all()


def test_margin_heads_compare_normalised_embeddings_with_normalised_centres() -> None:
    head = CosFaceHead(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))
    emb = torch.tensor([[2.0, 2.0]])
    c = 1 / math.sqrt(2)
    assert torch.allclose(head.cosine(emb), torch.tensor([[c, c]]))
    assert torch.allclose(head(emb, torch.tensor([1])), 64 * torch.tensor([[c, c - 0.35]]))


def test_softmax_head_loss_is_cross_entropy_of_linear_logits() -> None:
    head = SoftmaxHead(2, 3)
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        head.fc.bias.copy_(torch.tensor([0.0, 0.5, -1.0]))
    emb, label = torch.tensor([[2.0, -1.0]]), torch.tensor([2])
    logits = torch.tensor([2.0, -0.5, 0.0])
    want = -(logits[2] - torch.logsumexp(logits, 0))
    assert head.loss(emb, label).item() == pytest.approx(want.item(), abs=1e-5)


def test_unknown_head_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="softmax, cosface, arcface"):
        create_head("sphereface", 512, 10)


def _plumbing_teacher() -> FaceModel:
    """A random-weight 128-d teacher (plumbing only: it checks distillation's wiring)."""
    torch.manual_seed(1)
    backbone = nn.Sequential(nn.AdaptiveAvgPool2d(8), nn.Flatten(), nn.Linear(192, 128))
    card = ModelCard("plumbing-teacher", "pool+linear", 128, InputSpec(size=112))
    return FaceModel(backbone, card).eval()


@pytest.fixture()
def tiny_lfw(lfw_dev, tmp_path):
    """5 real LFW identities x 4 photos, linked (not copied) into a temp folder."""
    people = sorted(p for p in lfw_dev.iterdir() if p.is_dir() and len(os.listdir(p)) >= 20)[:5]
    root = tmp_path / "faces"
    for person in people:
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:4]:
            (root / person.name / photo.name).symlink_to(photo)
    return root


def test_tiny_real_training_run_learns_and_round_trips(tiny_lfw, tmp_path) -> None:
    out = tmp_path / "ckpt" / "mbf-softmax.pth"
    result = train(
        "mobilefacenet", "softmax", tiny_lfw, out, epochs=4, batch_size=6, lr=3e-3,
        min_images_per_identity=4, held_out_identities=2, alignment="center",
        teacher=_plumbing_teacher(),
        distill_weight=1.0, seed=0, device="cpu",
    )  # fmt: skip
    first, last = result.history[0], result.history[-1]
    assert last["head_loss"] < first["head_loss"]
    assert last["distill_loss"] < first["distill_loss"]
    assert result.metrics["chance"] == 0.5
    assert result.metrics["train_images"] == 12 and result.metrics["queries"] == 6
    assert os.listdir(out.parent) == [out.name]  # atomic write: no temp file left behind

    state, card = load_checkpoint(out)
    info = card["training"]
    assert (info["arch"], info["head"], info["epochs"], info["seed"]) == (
        "mobilefacenet", "softmax", 4, 0,
    )  # fmt: skip
    assert len(info["identities"]) == 3 and len(info["held_out"]) == 2
    assert info["teacher"] == "plumbing-teacher"

    # The loaded model reproduces the held-out score the run reported (weights and BN stats).
    model = create_architecture("mobilefacenet", checkpoint=out)
    assert model.card.name == "mbf-softmax" and model.card.pretrained
    data = load_face_folder(tiny_lfw, 4, model.space, alignment="center")
    held = torch.tensor([data.identities[i] in info["held_out"] for i in data.labels.tolist()])
    with torch.no_grad():
        emb = model(data.images[held].float())
    assert rank1(emb, data.labels[held])[0] == pytest.approx(result.metrics["rank1"])


def test_training_refuses_to_hold_out_too_many(tiny_lfw, tmp_path) -> None:
    with pytest.raises(ConfigError, match="hold out between 1 and 3"):
        train(
            "mobilefacenet", "cosface", tiny_lfw, tmp_path / "x.pth", held_out_identities=4,
            alignment="center",
        )  # fmt: skip


def test_cli_unknown_teacher_is_one_line(tmp_path) -> None:
    from veilbench.commands import build_cli

    result = CliRunner().invoke(
        build_cli(),
        ["train", "--arch", "mobilefacenet", "--dataset", str(tmp_path), "--out",
         str(tmp_path / "x.pth"), "--teacher", "no_such_model"],
    )  # fmt: skip
    assert result.exit_code == 2 and "no_such_model" in result.output
