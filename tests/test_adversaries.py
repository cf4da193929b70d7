"""Adversaries that try to undo a veil: the algebra on real faces with a real model's veil, the
learned inversion's plumbing, the results contract, ``compare`` and the report section."""

from __future__ import annotations

import copy
import types
from pathlib import Path

import pytest
import torch

from tests.helpers import tiny_random_model
from tests.test_compare import three_models
from veilbench import hookimpl
from veilbench.adversaries import PublicKnowledge, ThreatModel
from veilbench.adversaries.adaptive import AverageAligned, KnownPairSearch
from veilbench.adversaries.algebraic import Average, Difference, KnownPair
from veilbench.compare import compare
from veilbench.evaluation.image_metrics import ssim
from veilbench.measurements.adversaries import Adversaries, AdversaryResult, ReidCell
from veilbench.measurements.records import ImageQuality, Rate
from veilbench.models.base import FaceSpace
from veilbench.plugins import Plugins
from veilbench.protectors.veil import VeilProtector
from veilbench.report import render_html
from veilbench.results import ResultsDocument

#: A probe person of lfw-dev whose veil is crafted, and other people (the public photos).
PERSON = "Serena_Williams"
OTHERS = ["Andre_Agassi", "Hugo_Chavez", "Laura_Bush", "Tony_Blair", "Kofi_Annan"]


def _crops(folder: Path, n: int, skip: int = 0) -> torch.Tensor:
    from veilbench.data.align import center_crop
    from veilbench.data.images import load_rgb

    paths = sorted(folder.glob("*.jpg"))[skip : skip + n]
    return torch.stack(
        [torch.from_numpy(center_crop(load_rgb(p)).crop).permute(2, 0, 1).float() for p in paths]
    )


@pytest.fixture(scope="module")
def real_case(lfw_dev):
    """SFace's veil for one real person (few iterations), 8 of her photos protected with it,
    and 4 photos each of five other people as the public data; FaceNet as the attacker."""
    from veilbench.models.facenet import create_facenet
    from veilbench.models.sface import create_sface

    torch.set_num_threads(2)
    craft = _crops(lfw_dev / PERSON, 4)
    photos = _crops(lfw_dev / PERSON, 8, skip=4)
    public = torch.cat([_crops(lfw_dev / who, 4) for who in OTHERS])
    protector = VeilProtector(iterations=8, hull_iters=10)
    veil = protector.craft({PERSON: craft}, [create_sface()], seed=0, progress=False)[PERSON]
    protected = protector.apply(veil, photos).round()
    knowledge = PublicKnowledge(
        alpha=protector.config.alpha,
        photos=public,
        identities=[who for who in OTHERS for _ in range(4)],
    )
    return {
        "photos": photos,
        "protected": protected,
        "craft": craft,
        "craft_protected": protector.apply(veil, craft).round(),
        "public": knowledge,
        "attacker": create_facenet(),
    }


def _fit(adversary, case):
    adversary.fit(case["public"])
    return adversary


@pytest.mark.slow
def test_known_pair_recovers_other_photos_of_a_real_veil_exactly(real_case):
    adversary = _fit(KnownPair(), real_case)
    pair = (real_case["craft"][:1], real_case["craft_protected"][:1])
    rec = adversary.reconstruct(real_case["protected"], pair)
    assert ssim(real_case["photos"], rec).min() >= 0.95
    # It is the pair that does it: a pair of two different photos gives no such result.
    wrong = (real_case["craft"][1:2], real_case["craft_protected"][:1])
    assert (
        ssim(real_case["photos"], adversary.reconstruct(real_case["protected"], wrong)).mean() < 0.9
    )


@pytest.mark.slow
@pytest.mark.parametrize("adversary", [Difference, Average])
def test_difference_and_average_beat_doing_nothing_on_real_faces(real_case, adversary):
    """Against the attacker's black-box model the reconstructions look like the person (cosine
    to her clean photos) far more than the protected photos do; and like the photos in SSIM."""
    photos, protected = real_case["photos"], real_case["protected"]
    rec = _fit(adversary(), real_case).reconstruct(protected)
    model = real_case["attacker"]
    with torch.no_grad():
        clean = model(photos)
        cos_rec = (model(rec) * clean).sum(1).mean()
        cos_prot = (model(protected) * clean).sum(1).mean()
    assert cos_rec > cos_prot + 0.2, (float(cos_rec), float(cos_prot))
    assert ssim(photos, rec).mean() > ssim(photos, protected).mean() + 0.2


def test_the_average_prior_is_other_peoples_mean_face_and_k_photos_cancel_an_exact_veil():
    """Plumbing on a synthetic veil: with the person's own mean face as the prior, the algebra
    is exact; difference needs no prior and recovers x_i - mean of the others."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 16, 16, generator=g) * 255
    veil = torch.rand(1, 3, 16, 16, generator=g) * 255
    a = 0.2
    prot = a * x + (1 - a) * veil
    average = Average()
    average.fit(PublicKnowledge(alpha=a, photos=x, identities=["same"] * 5))
    assert torch.allclose(average.reconstruct(prot), x.clamp(0, 255), atol=1e-3)
    diff = Difference()
    diff.fit(PublicKnowledge(alpha=a, photos=x[:0], identities=[]))
    others = (x.sum(0) - x) / 4
    assert torch.allclose(diff.reconstruct(prot), (x - others + 127.5).clamp(0, 255), atol=1e-3)
    with pytest.raises(ValueError, match="at least two"):
        diff.reconstruct(prot[:1])
    with pytest.raises(ValueError, match="known"):
        KnownPair().reconstruct(prot)


def test_inversion_trains_a_tiny_network_caches_it_and_reconstructs(tmp_path, monkeypatch):
    """A tiny config with a RANDOM-WEIGHT model (plumbing): crafts veils, trains, caches."""
    from veilbench.adversaries.inversion import Inversion

    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(0)
    photos = (torch.rand(8, 3, 32, 32, generator=g) * 255).round()
    public = PublicKnowledge(
        alpha=0.2,
        photos=photos,
        identities=["a"] * 4 + ["b"] * 4,
        protector=VeilProtector(iterations=2, hull_iters=2),
        models=[tiny_random_model(FaceSpace(32, 0))],
    )
    settings = {"veils": 2, "photos_per_veil": 2, "width": 4, "steps": 3, "batch_size": 2}
    settings["craft_iterations"] = 2
    first = Inversion(**settings)
    first.fit(public)
    assert first.trained and first.checkpoint is not None and first.checkpoint.is_file()
    rec = first.reconstruct(photos[:3])
    assert rec.shape == (3, 3, 32, 32) and 0 <= rec.min() and rec.max() <= 255
    second = Inversion(**settings)
    second.fit(public)  # same settings: the cached network, nothing trained
    assert not second.trained and second.checkpoint == first.checkpoint
    assert torch.equal(second.reconstruct(photos[:3]), rec)
    other = Inversion(**{**settings, "steps": 4})
    other.fit(public)
    assert other.checkpoint != first.checkpoint


def _with_attack(doc: ResultsDocument, rank1: float) -> ResultsDocument:
    doc = copy.deepcopy(doc)
    for s in doc.results.sets():
        rate, zero = Rate(rank1, 10, 2), Rate(0.0, 10, 2)
        s.records["adversaries"] = Adversaries(
            results=[
                AdversaryResult(
                    adversary="average",
                    k=5,
                    threat=ThreatModel(public_photos=True).describe(),
                    reid={t: ReidCell(rate, rate, 10) for t in s.records["msr"]},
                    quality=ImageQuality(0.4, 0.3, 15.0, 10),
                    baseline={t: ReidCell(zero, zero, 10) for t in s.records["msr"]},
                    identities=2,
                )
            ],
            samples={"Someone": {"original": "data:image/png;base64,AAAA"}},
        )
    return doc


def test_results_round_trip_and_compare_flags_more_reidentification_as_a_regression():
    base = _with_attack(three_models(), 0.2)
    again = ResultsDocument.from_dict(base.to_dict())  # the derived records added on read
    assert ResultsDocument.from_dict(again.to_dict()).to_dict() == again.to_dict()
    s = again.results.surrogate_set("sface").measurements
    assert s["adversaries"].results[0].reid["facenet"].rank1.value == 0.2
    rates = s["privacy"]["held_out"]
    assert rates.reconstruction_rank1 == 0.2 and rates.best_adversary == "average k=5"
    # Files without the record still load.
    old = three_models().to_dict()
    assert (
        "adversaries"
        not in ResultsDocument.from_dict(old).results.surrogate_set("sface").measurements
    )

    rows = {r.metric: r.status for r in compare(base, _with_attack(three_models(), 0.5)).rows}
    assert rows["reid/sface/average@k5->facenet"] == "REGRESSION"
    assert rows["reid/sface/average@k5->sface"] == "REGRESSION"
    better = {r.metric: r.status for r in compare(base, _with_attack(three_models(), 0.0)).rows}
    assert better["reid/sface/average@k5->facenet"] != "REGRESSION"


def test_report_shows_privacy_under_attack_beside_black_box_msr():
    html = render_html(_with_attack(three_models(), 0.6))
    assert "Privacy under attack" in html and 'id="adversaries-table"' in html
    headline = html[html.index('id="headline"') : html.index('id="msr"')]
    assert "Re-identified after attack" in headline and "0.600" in headline
    assert headline.index("Black-box MSR") < headline.index("Re-identified after attack")
    assert "average k=5" in headline
    empty = render_html(three_models())
    assert "No adversary ran" in empty


def test_a_plugin_registers_an_adversary_with_its_threat_model():
    class Negative:
        threat = ThreatModel()

        def fit(self, public):
            pass

        def reconstruct(self, protected, known=None):
            return 255 - protected

    @hookimpl
    def register_adversaries(register):
        register("negative", Negative, threat=Negative.threat, description="inverts")

    module = types.ModuleType("negative_plugin")
    module.register_adversaries = register_adversaries
    plugins = Plugins(entry_points_=[], modules={"neg": module})
    entry = plugins.registries["adversaries"].get("negative")
    assert entry.to_dict()["threat"] == ThreatModel().to_dict()
    assert torch.equal(entry.create().reconstruct(torch.zeros(1)), torch.full((1,), 255.0))


def test_keyed_shifts_stop_the_plain_average_adversary_but_not_adaptive_ones():
    """The mitigation on smooth synthetic photos and a RANDOM-WEIGHT model (plumbing): the
    holder recovers exactly by searching the shift; the plain average adversary no longer
    does; adversaries that search the public shift range as well still do."""
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(6, 3, 32, 32, generator=g) * 255, 5, 1, 2)
    model = tiny_random_model(FaceSpace(32, 0))
    errors = {}
    for shift in (0, 4):
        protector = VeilProtector(iterations=3, hull_iters=2, shift=shift)
        veil = protector.craft({"a": x}, [model], progress=False)["a"]
        protected = protector.apply(veil, x).round()
        assert (protector.recover(veil, protected) - x).abs().max() <= 0.5 / 0.2 + 1e-3
        public = PublicKnowledge(alpha=0.2, photos=x, identities=["a"] * 6, protector=protector)
        for adversary in (Average(), AverageAligned(), KnownPairSearch()):
            adversary.fit(public)
            pair = (x[:1], protected[:1])
            rec = adversary.reconstruct(protected[1:], pair)
            errors[adversary.name, shift] = float((rec - x[1:]).abs().mean())
    assert errors["average", 0] < 3 and errors["average", 4] > 5 * errors["average", 0], errors
    # ... but not an attacker who knows the public shift range and searches it as well.
    assert errors["average_aligned", 4] < errors["average", 4] / 5, errors
    assert errors["known_pair_search", 4] < 3, errors


def test_adversary_flags_are_checked_before_any_work():
    from veilbench.config import build_config
    from veilbench.errors import ConfigError
    from veilbench.plugins import get_plugins
    from veilbench.validation import validate_run

    assert build_config({}, {"adversary_k": "10, 2,5"}).adversary_ks() == [2, 5, 10]
    for bad in ("0", "two", ""):
        with pytest.raises(ConfigError, match="adversary_k"):
            build_config({}, {"adversary_k": bad})
    with pytest.raises(ConfigError, match="did you mean average"):
        validate_run(build_config({}, {"adversaries": "averag"}), get_plugins())
    validate_run(build_config({}, {"adversaries": ""}), get_plugins())  # none: allowed
