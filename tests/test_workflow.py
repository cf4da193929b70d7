"""craft / protect / recover on real LFW photos: nothing overwritten, lost, garbled or half-done.

Veils here are either crafted with a tiny RANDOM-WEIGHT model (plumbing: files, seeds) or random
images saved as veil files: what is checked (file handling, the blend algebra) does not depend
on what the veil fools.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from veilbench.commands import build_cli
from veilbench.data.images import load_rgb
from veilbench.models.base import FaceSpace
from veilbench.veilfile import Veil, load_veil, save_veil

S = FaceSpace().size  # the default canonical crop, as craft makes it
PERSON = "Aaron_Peirsol"


def invoke(*args: object, env: dict | None = None):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], env=env)


def random_veil(path: Path, seed: int) -> Path:
    pixels = torch.randint(0, 256, (3, S, S), generator=torch.Generator().manual_seed(seed))
    return save_veil(path, Veil(veil=pixels.float(), alpha=0.2, protector="veil", identity="p"))


@pytest.fixture
def photos(lfw_dev, tmp_path) -> list[Path]:
    """Four real photos of one person, copied (the shared data stays read-only)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted((lfw_dev / PERSON).glob("*.jpg"))[:4]:
        shutil.copy(p, folder / p.name)
    return sorted(folder.iterdir())


def _craft(photos_dir: Path, out: Path, *extra: str):
    return invoke(
        "craft",
        "--images",
        photos_dir,
        "--model",
        "tiny_random_a",
        "-o",
        out,
        "--min-images",
        "4",
        "--alignment",
        "center",
        "--param",
        "iterations=1",
        "--param",
        "hull_iters=2",
        "--quiet",
        *extra,
    )


def test_random_weight_craft_fresh_seed_by_default_and_never_replaces_a_veil(
    tiny_plugins, photos, tmp_path
):
    folder = photos[0].parent
    a, b = tmp_path / "a.veil", tmp_path / "b.veil"
    first = _craft(folder, a)
    assert first.exit_code == 0, first.output
    assert "fresh random start" in first.output
    assert _craft(folder, b).exit_code == 0
    va, vb = load_veil(a), load_veil(b)
    # Same photos, model and settings, yet different veils: the start is fresh entropy ...
    assert not torch.equal(va.veil, vb.veil)
    assert isinstance(va.seed, int) and va.seed != vb.seed
    assert str(va.seed) not in first.output  # ... and the seed, a secret, is only in the file

    # --seed reproduces a veil (benchmarks) and is recorded.
    c, d = tmp_path / "c.veil", tmp_path / "d.veil"
    assert _craft(folder, c, "--seed", "7").exit_code == 0
    assert _craft(folder, d, "--seed", "7").exit_code == 0
    assert torch.equal(load_veil(c).veil, load_veil(d).veil) and load_veil(c).seed == 7

    # An existing veil is refused before any work, then replaced only with --force + backup.
    before = a.read_bytes()
    stale = tmp_path / ".a.veil.k3j_x9q2.veilbench-tmp"  # what a killed write leaves
    stale.write_bytes(b"partial")
    again = _craft(folder, a)
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    assert a.read_bytes() == before
    forced = _craft(folder, a, "--force")
    assert forced.exit_code == 0, forced.output
    backup = tmp_path / "a.veil.bak"
    assert backup.read_bytes() == before and a.read_bytes() != before
    assert stat.S_IMODE(backup.stat().st_mode) == stat.S_IMODE(a.stat().st_mode) == 0o600
    assert not stale.exists()
    assert _craft(folder, a, "--force").exit_code == 0
    assert (tmp_path / "a.veil.bak2").is_file()  # earlier backups are kept too


def test_protect_never_writes_over_inputs_and_names_same_stems_apart(photos, tmp_path):
    veil = random_veil(tmp_path / "p.veil", 0)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    inputs = [
        tmp_path / "a" / "photo.jpg",
        tmp_path / "a" / "photo.png",
        tmp_path / "b" / "photo.jpg",
    ]
    shutil.copy(photos[0], inputs[0])
    Image.open(photos[1]).save(inputs[1])
    shutil.copy(photos[2], inputs[2])
    out = tmp_path / "out"
    result = invoke("protect", "--veil", veil, *inputs, "-o", out, "--alignment", "center")
    assert result.exit_code == 0, result.output
    assert "protected 3 photos" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["photo-2.png", "photo-3.png", "photo.png"]
    assert len({p.read_bytes() for p in out.iterdir()}) == 3  # three different photos kept

    # Into the inputs' own folder: refused, the originals untouched.
    originals = {p: p.read_bytes() for p in inputs}
    inplace = invoke("protect", "--veil", veil, inputs[1], "-o", inputs[1].parent)
    assert inplace.exit_code == 2 and "would overwrite the input" in inplace.output
    assert {p: p.read_bytes() for p in inputs} == originals

    # Over an earlier call's output: refused unless --force.
    again = invoke("protect", "--veil", veil, *inputs, "-o", out, "--alignment", "center")
    assert again.exit_code == 2 and "--force" in again.output
    forced = invoke(
        "protect", "--veil", veil, *inputs, "-o", out, "--alignment", "center", "--force"
    )
    assert forced.exit_code == 0, forced.output


def test_a_call_that_did_nothing_fails_and_a_partial_one_says_so(photos, tmp_path):
    veil = random_veil(tmp_path / "p.veil", 0)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:200])
    none = invoke("protect", "--veil", veil, broken, "-o", tmp_path / "o1")
    assert none.exit_code == 2 and "no photo was protected" in none.output
    part = invoke(
        "protect", "--veil", veil, broken, photos[0], "-o", tmp_path / "o2", "--alignment", "center"
    )
    assert part.exit_code == 1 and "protected 1 of 2 photos" in part.output
    assert "skipped" in part.output and "broken.jpg" in part.output


def test_recover_refuses_another_veil_and_grey_copies_instead_of_returning_noise(photos, tmp_path):
    mine, other = random_veil(tmp_path / "mine.veil", 1), random_veil(tmp_path / "other.veil", 2)
    prot = tmp_path / "prot"
    ok = invoke("protect", "--veil", mine, *photos, "-o", prot, "--alignment", "center")
    assert ok.exit_code == 0, ok.output
    protected = sorted(prot.iterdir())

    wrong = invoke("recover", "--veil", other, *protected, "-o", tmp_path / "wrong")
    assert wrong.exit_code == 2 and "fingerprint does not match this veil" in wrong.output
    assert not (tmp_path / "wrong").exists() or not any((tmp_path / "wrong").iterdir())

    # Copies without the fingerprint chunk: the range check still tells another veil apart.
    bare = tmp_path / "bare"
    bare.mkdir()
    for p in protected:
        Image.open(p).save(bare / p.name)  # PIL copies pixels, not text chunks
    wrong = invoke("recover", "--veil", other, *bare.iterdir(), "-o", tmp_path / "wrong2")
    assert wrong.exit_code == 2 and "recover outside 0-255" in wrong.output

    grey = tmp_path / "grey.png"
    Image.open(protected[0]).convert("L").save(grey)
    mixed = invoke("recover", "--veil", mine, grey, protected[1], "-o", tmp_path / "rec")
    assert mixed.exit_code == 1 and "grey-scale" in mixed.output
    from veilbench.data.align import center_crop

    recovered = load_rgb(tmp_path / "rec" / f"{protected[1].stem}.png").astype(int)
    original = np.rint(center_crop(load_rgb(photos[1])).crop).astype(int)
    assert np.abs(recovered - original).max() <= 3  # 0.5 / alpha, plus rounding

    # A photo that is not a protected crop: the fix named is one recover has.
    crop = invoke("recover", "--veil", mine, photos[0], "-o", tmp_path / "rec2")
    assert crop.exit_code == 2 and "veilbench protect wrote" in crop.output
    assert "--alignment" not in crop.output


def test_corrupt_veil_names_craft_as_the_fix(tmp_path, photos):
    bad = tmp_path / "bad.veil"
    bad.write_bytes(b"PK\x03\x04 not really")
    result = invoke("protect", "--veil", bad, photos[0], "-o", tmp_path / "o")
    assert result.exit_code == 2
    assert "veilbench craft" in result.output and "veilbench protect)" not in result.output
    assert "Traceback" not in result.output


def test_sixteen_bit_grey_png_is_scaled_not_saturated(photos, tmp_path):
    grey8 = np.asarray(Image.open(photos[0]).convert("L"), dtype=np.uint16)
    wide = tmp_path / "wide.png"
    Image.fromarray(grey8 * 257).save(wide)  # the same photo at 16 bits per pixel
    assert Image.open(wide).mode.startswith("I")
    loaded = load_rgb(wide)
    assert loaded.shape[2] == 3 and np.array_equal(loaded[..., 0], grey8.astype(np.uint8))
    assert (loaded == 255).mean() < 0.05  # PIL's own conversion made most pixels 255


def test_random_weight_run_refuses_a_file_as_out_before_any_work(tiny_plugins, tmp_path):
    target = tmp_path / "results"
    target.write_text("keep me")
    result = invoke("run", "--models", "tiny_random_a", "--dataset", "synthetic", "--out", target)
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    assert target.read_text() == "keep me"


def test_random_weight_run_refuses_a_photo_as_dataset(tiny_plugins, lfw_dev, tmp_path):
    photo = next((lfw_dev / PERSON).glob("*.jpg"))
    result = invoke("run", "--models", "tiny_random_a", "--dataset", photo, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "is a file; give a folder" in result.output
    assert "does not exist" not in result.output


def test_skipped_dataset_files_are_listed_on_the_console(capsys):
    from veilbench.commands.run import _print_summary
    from veilbench.results import ResultsDocument

    doc = ResultsDocument(problems=[{"identity": "x", "file": "x/1.jpg", "reason": "no face"}])
    _print_summary(doc)
    assert "skipped x/1.jpg: no face" in capsys.readouterr().err


def test_random_weight_craft_warns_about_an_unconverged_veil_and_strict_fails(
    tiny_plugins, tmp_path, photos
):
    """An unreachable visual target (RMS 1000 > 255): the veil cannot converge in its cap."""
    folder = photos[0].parent
    never = ("--param", "stop_rms=1000", "--param", "max_iterations=2")
    lenient = _craft(folder, tmp_path / "a.veil", *never)
    assert lenient.exit_code == 0, lenient.output
    assert "did not converge in 2 iterations (cap 2)" in lenient.output
    record = load_veil(tmp_path / "a.veil").stats["convergence"]
    assert record["converged"] is False and record["iterations"] == 2
    strict = _craft(folder, tmp_path / "b.veil", *never, "--strict")
    assert strict.exit_code == 3 and "did not converge" in strict.output
    assert (tmp_path / "b.veil").is_file()  # still written: the warning says what it is
    reachable = _craft(folder, tmp_path / "c.veil", "--param", "stop_rms=0", "--strict")
    record = load_veil(tmp_path / "c.veil").stats["convergence"]
    assert ("did not converge" in reachable.output) == (not record["converged"])
    assert reachable.exit_code == (0 if record["converged"] else 3)
