"""The .veil file: lossless round trip, owner-only, clear errors, exact recovery."""

from __future__ import annotations

import json
import stat
import zipfile

import pytest
import torch

from veilbench.errors import VeilFileError
from veilbench.veilfile import Veil, apply_veil, load_veil, recover_images, save_veil

S = 32


def _veil(pixels: torch.Tensor, **kw) -> Veil:
    return Veil(
        veil=pixels,
        alpha=0.2,
        protector="veil",
        identity="Ada",
        config={"mu_var": 30.0},
        surrogates=[{"name": "sface", "weights": [{"name": "f", "sha256": "ab"}]}],
        image_sha256=["00" * 32],
        **kw,
    )


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 255


@pytest.mark.parametrize(
    "pixels, member",
    [
        (_rand(3, S, S).round(), "veil.png"),  # integral, in range: stored as PNG
        (_rand(3, S, S) * 1.3 - 20, "veil.npy"),  # out of range: float32
        (_rand(4, 3, S, S).round(), "veil-0003.png"),  # per-image (AVIH)
    ],
)
def test_round_trip_is_bit_exact(tmp_path, pixels, member):
    veil = _veil(pixels, stats={"seconds": 1.5})
    path = save_veil(tmp_path / "ada.veil", veil)
    assert member in zipfile.ZipFile(path).namelist()
    back = load_veil(path)
    assert torch.equal(back.veil, pixels.float())
    assert back.per_image == (pixels.ndim == 4)
    assert back.metadata() == veil.metadata()


def test_file_is_owner_only_and_written_atomically(tmp_path):
    path = save_veil(tmp_path / "sub" / "ada.veil", _veil(_rand(3, S, S).round()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    save_veil(path, _veil(_rand(3, S, S, seed=1).round()))  # overwrite in place
    assert [p.name for p in path.parent.iterdir()] == ["ada.veil"]  # no temp file left behind


def test_corrupt_missing_and_foreign_files_raise_veil_file_error(tmp_path):
    path = save_veil(tmp_path / "ada.veil", _veil(_rand(3, S, S).round()))
    truncated = tmp_path / "truncated.veil"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    foreign = tmp_path / "foreign.veil"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("meta.json", '{"format": "something-else"}')
    garbage = tmp_path / "garbage.veil"
    garbage.write_bytes(b"not a zip at all")
    for bad, words in [
        (truncated, "corrupt"),
        (foreign, "not a veilbench veil"),
        (garbage, "corrupt"),
        (tmp_path / "absent.veil", "does not exist"),
    ]:
        with pytest.raises(VeilFileError, match=words):
            load_veil(bad)


def test_size_mismatch_names_the_fix():
    veil = _veil(_rand(3, S, S).round())
    with pytest.raises(VeilFileError, match="align the images"):
        apply_veil(veil, _rand(2, 3, S + 8, S + 8))
    per_image = _veil(_rand(3, 3, S, S).round())
    with pytest.raises(VeilFileError, match="only to the images it was crafted on"):
        apply_veil(per_image, _rand(2, 3, S, S))


def test_recovery_is_exact_up_to_quantisation_when_the_veil_is_in_range():
    veil = _veil(_rand(3, S, S).round())
    images = _rand(5, 3, S, S, seed=2).round()
    protected = apply_veil(veil, images).round()  # what a uint8 file on disk holds
    assert protected.min() >= 0 and protected.max() <= 255
    recovered = recover_images(veil, protected)
    assert (recovered - images).abs().max() <= 0.5 / veil.alpha + 1e-4
    assert (recovered - images).abs().mean() < 1.5
    # The optional Gaussian filter smooths the recovered images (changing them).
    blurred = recover_images(veil, protected, gaussian_sigma=1.0)
    assert blurred.shape == images.shape and not torch.equal(blurred, recovered)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"alpha": 0}, "alpha 0 is not a number in \\(0, 1\\)"),
        ({"alpha": -0.2}, "alpha -0.2 is not"),
        ({"alpha": float("nan")}, "alpha nan is not"),
        ({"alpha": None}, "alpha None is not"),  # missing
        ({"format_version": "1"}, "format_version '1' is not a positive integer"),
        ({"shape": [3, S]}, "shape"),
        ({"protector": 5}, "protector is a int"),
    ],
)
def test_damaged_metadata_is_refused_with_the_reason(tmp_path, change, words):
    path = save_veil(tmp_path / "ada.veil", _veil(_rand(3, S, S).round()))
    with zipfile.ZipFile(path) as z:
        meta, png = json.loads(z.read("meta.json")), z.read("veil.png")
    meta.update(change)
    if change.get("alpha", 0.2) is None:
        del meta["alpha"]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.json", json.dumps(meta))
        z.writestr("veil.png", png)
    with pytest.raises(VeilFileError, match=words):
        load_veil(path)


def test_nan_pixels_are_refused(tmp_path):
    pixels = _rand(3, S, S) * 1.3 - 20  # stored as float32 .npy
    pixels[0, 0, 0] = float("nan")
    path = save_veil(tmp_path / "ada.veil", _veil(pixels))
    with pytest.raises(VeilFileError, match="NaN or inf"):
        load_veil(path)


def test_replace_false_never_replaces_and_leaves_no_temp_file(tmp_path):
    path = save_veil(tmp_path / "ada.veil", _veil(_rand(3, S, S).round()))
    before = path.read_bytes()
    with pytest.raises(VeilFileError, match="already exists"):
        save_veil(path, _veil(_rand(3, S, S, seed=1).round()), replace=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ada.veil"]
