"""The evaluation stage on its own, with a hand-built COLOUR model whose answers are known.

The model embeds a photo as its mean colour, so "people" are solid colours and every expected
number can be worked out by hand: these tests check the evaluation arithmetic (which photos are
compared with what, white-box vs black-box, baselines), not face recognition.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from veilbench.data.faces import EvalData, Faces, ProbeFaces
from veilbench.data.protocol import Split
from veilbench.evaluation.protected import (
    clean_rank1,
    evaluate_clean,
    evaluate_images,
    evaluate_impersonation,
    evaluate_msr,
    evaluate_robustness,
)
from veilbench.evaluation.samples import shareable_samples
from veilbench.models.base import FaceModel, FaceSpace, InputSpec, ModelCard
from veilbench.protectors.apply import ProtectedFaces
from veilbench.registry import Entry

SPACE = FaceSpace(template_size=32, margin=0)
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 20),
}


class MeanColour(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def colour_model(name: str) -> FaceModel:
    card = ModelCard(
        name=name, architecture="mean-colour", embedding_size=3, input=InputSpec(size=32)
    )
    return FaceModel(MeanColour(), card, SPACE).eval()


def faces(colour: str, n: int, jitter: int = 0) -> Faces:
    rng = np.random.default_rng(len(colour) + n + jitter)
    crops = np.empty((n, SPACE.size, SPACE.size, 3), np.uint8)
    crops[:] = COLOURS[colour]
    crops = np.clip(crops.astype(int) + rng.integers(-jitter, jitter + 1, crops.shape), 0, 255)
    hashes = [f"{colour}-{n}-{jitter}-{i}" for i in range(n)]
    return Faces(
        crops.astype(np.uint8), [colour] * n, hashes, [f"{colour}/{i}.png" for i in range(n)]
    )


def solid(colour: str, n: int) -> torch.Tensor:
    return faces(colour, n).tensor()


@pytest.fixture
def data(tmp_path, monkeypatch) -> EvalData:
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path))
    probes = [ProbeFaces(c, faces(c, 4, 5), faces(c, 3, 6)) for c in ("red", "green")]
    gallery = [faces(c, 2, 3) for c in COLOURS]
    merged = Faces(
        np.concatenate([g.crops for g in gallery]),
        sum((g.identities for g in gallery), []),
        sum((g.hashes for g in gallery), []),
        sum((g.files for g in gallery), []),
    )
    return EvalData(Split([], [], []), probes, merged)


@pytest.fixture
def targets(data):
    models = {"a": colour_model("a"), "b": colour_model("b")}
    return evaluate_clean(models, data, batch_size=4, device=torch.device("cpu"))


def protected_as(craft: str, held_out: str, n_craft: int = 4, n_held: int = 3) -> ProtectedFaces:
    """Protected photos that look like another colour (so a model answers that person)."""
    return ProtectedFaces(
        solid(craft, n_craft), solid(held_out, n_held), solid(craft, n_craft), None
    )


def test_clean_answers_and_rank1(targets, data):
    rates = clean_rank1(targets, data)
    assert {t: {s: r.value for s, r in c.items()} for t, c in rates.items()} == {
        "a": {"craft": 1.0, "held_out": 1.0},
        "b": {"craft": 1.0, "held_out": 1.0},
    }


def test_msr_counts_protected_answers_equal_to_clean_ones(targets, data):
    # red: crafting photos still red (match), held-out look blue (no match);
    # green: crafting photos look yellow (no match), held-out still green (match).
    protected = {"red": protected_as("red", "blue"), "green": protected_as("yellow", "green")}
    table = evaluate_msr(targets, data, protected)
    for target in ("a", "b"):
        craft, held = table[target]["craft"], table[target]["held_out"]
        assert (craft.msr.value, craft.n) == (0.5, 8)  # 4 of 8 crafting photos (red's) match
        assert (held.msr.value, held.n) == (0.5, 6)  # 3 of 6 held-out photos (green's) match
        assert craft.rank1_protected.value == 0.5 and craft.rank1_clean.value == 1.0
        assert held.msr.outcomes == {"red": "000", "green": "111"}


def test_image_quality_protected_and_recovered(data):
    same = {
        p.identity: ProtectedFaces(p.craft.tensor(), p.held_out.tensor(), p.craft.tensor(), None)
        for p in data.probes
    }
    metrics = evaluate_images(data, same, torch.device("cpu"))
    assert metrics.protected.ssim == pytest.approx(1.0) and metrics.protected.n == 14
    assert metrics.recovered.ssim == pytest.approx(1.0) and metrics.recovered.n == 8
    different = {p.identity: protected_as("blue", "blue") for p in data.probes}
    for p in different.values():
        p.craft_recovered = None  # a protector that cannot be undone
    metrics = evaluate_images(data, different, torch.device("cpu"))
    assert metrics.recovered is None
    assert metrics.protected.psnr < 15


def test_robustness_curve_and_clean_baseline(targets, data):
    """An attack that paints everything blue: protected and clean photos both stop matching."""
    strengths = [0.0, 1.0]

    def paint_blue(strength):
        blue = torch.tensor(COLOURS["blue"], dtype=torch.float32).view(1, 3, 1, 1)
        return lambda x: x * (1 - strength) + blue.to(x.device) * strength

    entry = Entry(
        "paint", paint_blue, "test", "attacks", {"parameter": "amount", "sweep": strengths}
    )
    protected = {p.identity: protected_as(p.identity, p.identity) for p in data.probes}
    curves = evaluate_robustness(targets, data, protected, [entry], sweeps={})
    curve = curves["paint"]
    assert curve.parameter == "amount" and curve.strengths == strengths
    assert [r.value for r in curve.protected["a"]] == [1.0, 0.0]
    assert [r.value for r in curve.clean["b"]] == [1.0, 0.0]
    capped = evaluate_robustness(
        targets, data, protected, [entry], sweeps={"paint": [0.0]}, max_images=1
    )
    assert capped["paint"].strengths == [0.0]


def test_impersonation_rate(targets, data):
    class PaintWithVeil:
        per_image = False

        def apply(self, veil, images):
            return veil.expand_as(images).clone()

    protected = {
        p.identity: ProtectedFaces(
            *(solid(p.identity, 4), solid(p.identity, 3), None), veil=solid(p.identity, 1)
        )
        for p in data.probes
    }
    # Each person's veil turns the other person's photos into that person: every answer is p.
    rates = evaluate_impersonation(targets, data, protected, PaintWithVeil())
    assert {t: r.value for t, r in rates.items()} == {"a": 1.0, "b": 1.0}
    assert rates["a"].identities == 2  # the unit is the veil's owner
    PaintWithVeil.per_image = True
    assert evaluate_impersonation(targets, data, protected, PaintWithVeil()) == {}


def test_samples_never_show_the_veil_or_two_versions_of_one_photo(data):
    protected = {p.identity: protected_as(p.identity, p.identity) for p in data.probes}
    for p in protected.values():
        p.veil = solid("yellow", 1)[0]
    samples = shareable_samples(data.probes, protected)
    assert set(samples["red"]) == {"original", "protected", "recovered"}
    secret = shareable_samples(data.probes, protected, secrets=True)
    assert set(secret["red"]) == {"original", "protected", "recovered", "veil"}
    protected["red"].craft_recovered = None
    assert set(shareable_samples(data.probes, protected)["red"]) == {"original", "protected"}


def test_thresholds_at_far_rest_on_enough_impostors():
    from veilbench.evaluation.acceptance import threshold_at

    scores = np.linspace(0.0, 1.0, 1000)
    point = threshold_at(scores, 1e-2)
    assert point.accepted == 10 and point.impostors == 1000  # exactly 1% of impostors pass
    assert (scores >= point.threshold).sum() == 10
    low = threshold_at(scores, 1e-3)
    assert low.accepted == 1 and "rough" in low.note
    none = threshold_at(scores[:500], 1e-3)  # 500 impostors cannot support FAR 1e-3
    assert none.threshold is None and "cannot support FAR 0.001" in none.note


def test_verification_accepts_clean_photos_and_rejects_disguised_ones(data):
    """TAR of photos that still look like their person is the clean TAR; of photos painted
    another person's colour it is 0 (PSR 1). 124 impostor comparisons support FAR 1e-2 only."""
    from veilbench.evaluation.acceptance import evaluate_verification

    crowd = [faces("blue", 30, 9), faces("yellow", 30, 9), faces("red", 2, 3), faces("green", 2, 3)]
    data.gallery = Faces(
        np.concatenate([g.crops for g in crowd]),
        sum((g.identities for g in crowd), []),
        sum((g.hashes for g in crowd), []),
        sum((g.files for g in crowd), []),
    )
    models = {"a": colour_model("a")}
    targets = evaluate_clean(models, data, batch_size=8, device=torch.device("cpu"))
    same = {p.identity: protected_as(p.identity, p.identity) for p in data.probes}
    other = {"red": protected_as("blue", "blue"), "green": protected_as("yellow", "yellow")}
    kept = evaluate_verification(targets, data, same)
    lost = evaluate_verification(targets, data, other)
    points = kept.thresholds["a"]
    assert points["1e-2"].impostors == 124 and points["1e-2"].threshold is not None
    assert points["1e-3"].threshold is None  # 124 impostors cannot support FAR 1e-3
    for subset in ("craft", "held_out"):
        assert list(kept.cells["a"][subset].points) == ["1e-2"]
        kept_point = kept.cells["a"][subset].points["1e-2"]
        lost_point = lost.cells["a"][subset].points["1e-2"]
        assert kept_point.tar.value == kept_point.clean_tar.value == 1.0
        assert lost_point.tar.value == 0.0 and lost_point.clean_tar.value == 1.0
        assert lost_point.tar.identities == 2 and lost_point.tar.interval is not None
