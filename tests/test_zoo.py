"""The protection zoo: obfuscations, cloaks, the parrot attacker and non-local means, checked on
real lfw-dev photos with the real SFace model (tiny sizes: a few photos, a few steps)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from veilbench_builtins.protectors import BUILTIN_PROTECTORS

from veilbench.adversaries import PublicKnowledge
from veilbench.adversaries.parrot import Parrot
from veilbench.attacks import nlmeans
from veilbench.errors import ConfigError
from veilbench.evaluation.image_metrics import ssim
from veilbench.lazy import resolve
from veilbench.models.base import FaceSpace
from veilbench.plugins import Plugins
from veilbench.protectors.cloaks import (
    FawkesProtector,
    MIFGSMProtector,
    PGDProtector,
    TIPIMProtector,
)
from veilbench.protectors.contract import PROMISES, THREATS, UTILITIES, traits
from veilbench.protectors.obfuscation import (
    FaceBlurProtector,
    KSameProtector,
    MaskProtector,
    PixelateProtector,
    mask_box,
)

#: lfw-dev people with many photos: two gallery and two probe photos each.
PEOPLE = [
    "Serena_Williams",
    "Andre_Agassi",
    "Hugo_Chavez",
    "Laura_Bush",
    "Tony_Blair",
    "Kofi_Annan",
    "George_W_Bush",
    "Gerhard_Schroeder",
]


def _crops(folder: Path, n: int, skip: int = 0) -> torch.Tensor:
    from veilbench.data.align import center_crop
    from veilbench.data.images import load_rgb

    paths = sorted(folder.glob("*.jpg"))[skip : skip + n]
    return torch.stack(
        [torch.from_numpy(center_crop(load_rgb(p)).crop).permute(2, 0, 1).float() for p in paths]
    ).round()  # as a saved crop holds them


@pytest.fixture(scope="module")
def faces(lfw_dev):
    """Gallery and probe photos (2 + 2 per person) and their identities."""
    gallery = torch.cat([_crops(lfw_dev / p, 2) for p in PEOPLE])
    probes = torch.cat([_crops(lfw_dev / p, 2, skip=2) for p in PEOPLE])
    return gallery, probes, [p for p in PEOPLE for _ in range(2)]


@pytest.fixture(scope="module")
def sface():
    from veilbench.models.sface import create_sface

    torch.set_num_threads(2)
    return create_sface().eval()


def _rank1(model, probes, gallery, identities) -> int:
    """Probes matched 1:N against the gallery (same identity list): how many are right."""
    with torch.no_grad():
        best = (model(probes) @ model(gallery).T).argmax(1).tolist()
    return sum(identities[b] == identities[i] for i, b in enumerate(best))


def _declared(name: str):
    entry = Plugins().registries["protectors"].get(name)
    return traits(resolve(entry.factory.lazy_target))


def test_every_builtin_protector_declares_known_traits():
    for name in [*BUILTIN_PROTECTORS]:
        t = _declared(name)
        assert set(t.threats) <= set(THREATS) and t.promise in PROMISES, name
        assert t.utility in UTILITIES, name
    assert "reused_perturbation" in _declared("veil").threats
    assert "parrot" in traits(FaceBlurProtector).threats
    assert traits(PGDProtector).promise == "cloak" and traits(PGDProtector).utility == "lpips"
    assert not traits(PixelateProtector).secret and not traits(KSameProtector).recoverable


def test_protector_names_do_not_collide_with_attack_names():
    plugins = Plugins()
    names = set(plugins.registries["protectors"].names())
    assert {"face_blur", "pixelate", "mask", "ksame", "pgd", "mifgsm", "fawkes", "tipim"} <= names
    assert not names & set(plugins.registries["attacks"].names())


def test_bad_strengths_are_refused():
    for make in (
        lambda: FaceBlurProtector(sigma="-1"),
        lambda: PixelateProtector(block="0"),
        lambda: MaskProtector(region="nose"),
        lambda: KSameProtector(k="0"),
        lambda: PGDProtector(epsilon="200"),
    ):
        with pytest.raises(ConfigError):
            make()


def test_ssim_falls_as_blur_and_pixelation_grow(faces):
    photos = faces[1][:4]
    for make, steps in (
        (lambda s: FaceBlurProtector(sigma=s), [0.0, 1.0, 3.0, 8.0]),
        (lambda s: PixelateProtector(block=s), [1, 4, 8, 16]),
    ):
        scores = [float(ssim(photos, make(s).apply(None, photos).round()).mean()) for s in steps]
        assert scores[0] == pytest.approx(1.0)
        assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores


def test_mask_covers_only_its_box_and_the_eye_band_lies_inside_the_face():
    space = FaceSpace()
    eyes, face = mask_box(space, "eyes"), mask_box(space, "face")
    assert face[0] <= eyes[0] < eyes[2] <= face[2] and face[1] <= eyes[1] < eyes[3] <= face[3]
    (lx, ly), (rx, _), *_ = space.landmarks()
    assert eyes[0] < lx < rx < eyes[2] and eyes[1] < ly < eyes[3]
    x = torch.full((1, 3, space.size, space.size), 200.0)
    out = MaskProtector(region="eyes").apply(None, x)
    x0, y0, x1, y1 = eyes
    assert (out[..., y0:y1, x0:x1] == 0).all()
    assert (out.sum() - 0) == pytest.approx(200.0 * 3 * (space.size**2 - (x1 - x0) * (y1 - y0)))


def test_none_leaves_real_photos_unchanged(faces):
    from veilbench.protectors.baselines import NoneProtector

    photos = faces[1][:3]
    protector = NoneProtector()
    veil = protector.craft({"p": photos}, [], progress=False)["p"]
    assert torch.equal(protector.apply(veil, photos), photos)


def test_parrot_reidentifies_blurred_faces_more_often_than_the_plain_matcher(faces, sface):
    gallery, probes, who = faces
    protector = FaceBlurProtector(sigma=12)
    blurred = protector.apply(None, probes).round()
    parrot = Parrot()
    parrot.fit(PublicKnowledge(1.0, gallery[:0], [], protector=protector, models=[sface]))
    with pytest.raises(ConfigError, match="own protected gallery"):
        parrot.reconstruct(blurred)  # scoring him against a clean gallery would mislead
    own = parrot.gallery(gallery, who)
    plain = _rank1(sface, blurred, gallery, who)
    parroted = _rank1(sface, parrot.reconstruct(blurred), own, who)
    # Measured: plain 2 of 16, parrot 6 of 16 (sigma 12); the clean rank-1 is 16 of 16.
    assert parroted >= plain + 3, (plain, parroted)


@pytest.mark.parametrize("protector", [PGDProtector, MIFGSMProtector])
def test_untargeted_cloak_lowers_its_white_box_similarity_within_budget(faces, sface, protector):
    photos = faces[1][:1]
    cloak = protector(epsilon=8, iterations=2)
    veil = cloak.craft({"p": photos}, [sface], seed=0, progress=False)["p"]
    cloaked = cloak.apply(veil, photos).round()
    assert (cloaked - photos).abs().max() <= 8.5
    with torch.no_grad():
        before = sface(photos)
        after = (sface(cloaked) * before).sum(1)
    assert (after < 0.6).all(), after  # a clean photo has cosine 1 to itself


def _pool(tmp_path: Path, lfw_dev: Path, people: list[str], monkeypatch) -> Path:
    """A public pool folder of links to lfw-dev people outside PEOPLE (no photo copied); its
    prepared crops go to a private cache."""
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    tmp_path = tmp_path / "pool"
    for person in people:
        (tmp_path / person).mkdir(parents=True)
        for photo in sorted((lfw_dev / person).glob("*.jpg"))[:1]:
            (tmp_path / person / photo.name).symlink_to(photo)
    return tmp_path


POOL_PEOPLE = ["Abdullah_Gul", "Adam_Sandler", "AJ_Cook", "Aaron_Sorkin"]


def test_ksame_gives_the_mean_of_the_nearest_pool_faces(
    tmp_path, lfw_dev, faces, sface, monkeypatch
):
    pool = _pool(tmp_path, lfw_dev, POOL_PEOPLE, monkeypatch)
    photos = faces[1][:2]
    ksame = KSameProtector(k=2, pool=str(pool), pool_alignment="center")
    veil = ksame.craft({"Serena_Williams": photos}, [sface], progress=False)["Serena_Williams"]
    out = ksame.apply(veil, photos)
    pool_photos = torch.cat([_crops(pool / p, 1) for p in sorted(POOL_PEOPLE)])
    means = {(i, j): (pool_photos[i] + pool_photos[j]) / 2 for i in range(4) for j in range(i)}
    for img in out:
        assert min(float((img - m).abs().max()) for m in means.values()) < 1e-3
    with pytest.raises(ConfigError, match="public pool"):
        KSameProtector().craft({"x": photos}, [sface], progress=False)


@pytest.mark.parametrize("protector", [FawkesProtector, TIPIMProtector])
def test_targeted_cloak_pulls_toward_a_pool_identity(
    tmp_path, lfw_dev, faces, sface, monkeypatch, protector
):
    pool = _pool(tmp_path, lfw_dev, POOL_PEOPLE, monkeypatch)
    photos = faces[1][:1]
    cloak = protector(epsilon=8, iterations=2, pool=str(pool), pool_alignment="center")
    calibration = cloak.calibrate({"p": photos}, [sface])
    veil = cloak.craft({"p": photos}, [sface], progress=False, calibration=calibration)["p"]
    cloaked = cloak.apply(veil, photos).round()
    names, cents = calibration.pool.centroids(calibration.embeddings["sface"])
    with torch.no_grad():
        gain = (sface(cloaked) - sface(photos)) @ cents.T
    assert float(gain.max(1).values.min()) > 0.2  # every photo moved toward one pool identity
    assert (cloaked - photos).abs().max() <= 8.5


def test_nlmeans_is_the_identity_at_zero_and_removes_noise(faces):
    photos = faces[1][:2]
    assert torch.equal(nlmeans(0)(photos), photos)
    noisy = photos + 12 * torch.randn(photos.shape, generator=torch.Generator().manual_seed(0))
    noisy = noisy.clamp(0, 255).round()
    cleaned = nlmeans(10)(noisy)
    assert float(ssim(photos, cleaned).mean()) > float(ssim(photos, noisy).mean()) + 0.05


def test_unused_identities_are_those_with_no_photo_in_the_split(tmp_path):
    from veilbench.data.datasets import FaceDataset, ImageRef
    from veilbench.data.protocol import ProtocolConfig, split
    from veilbench.protectors.pool import unused_identities

    counts = {"probe_a": 20, "probe_b": 20, "small_a": 2, "small_b": 2, "small_c": 2}
    refs = [
        ImageRef(who, tmp_path / f"{who}_{i}.jpg") for who, n in counts.items() for i in range(n)
    ]
    dataset = FaceDataset("toy", tmp_path, refs)
    chosen = split(dataset, ProtocolConfig(identities=2, max_distractors=2, seed=0))
    unused = unused_identities(dataset, chosen)
    gallery = {r.identity for r in chosen.gallery()}
    assert unused and not set(unused) & gallery and not {"probe_a", "probe_b"} & set(unused)
