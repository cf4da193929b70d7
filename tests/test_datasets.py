"""Datasets: bad files are reported with a reason, never fatal; prepared crops are cached."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from veilbench.data.datasets import image_folder, prepare
from veilbench.data.protocol import ProtocolConfig, split
from veilbench.data.synthetic import synthetic
from veilbench.models.base import FaceSpace


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))


def test_bad_files_are_listed_with_reasons(tmp_path, isolated_cache):
    space = FaceSpace()
    person = tmp_path / "data" / "alice"
    person.mkdir(parents=True)
    good = np.full((space.size, space.size, 3), 120, np.uint8)
    Image.fromarray(good).save(person / "good.png")
    (person / "corrupt.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(person / "tiny.png")
    ds = image_folder(tmp_path / "data", alignment="none")
    prepared = prepare(ds, ds.refs, space)
    assert [r.path.name for r in prepared.refs] == ["good.png"]
    reasons = {p["file"].rsplit("/", 1)[-1]: p["reason"] for p in prepared.problems}
    assert set(reasons) == {"corrupt.png", "tiny.png"}
    assert all(reasons.values())


def test_photo_without_a_face_is_reported(lfw_dev, tmp_path, isolated_cache):
    person = tmp_path / "data" / "Tony_Blair"
    person.mkdir(parents=True)
    for f in sorted((lfw_dev / "Tony_Blair").glob("*.jpg"))[:2]:
        shutil.copy(f, person / f.name)
    Image.fromarray(np.full((250, 250, 3), 128, np.uint8)).save(person / "grey.jpg")
    ds = image_folder(tmp_path / "data")  # YuNet alignment
    prepared = prepare(ds, ds.refs, FaceSpace())
    assert len(prepared.refs) == 2
    (problem,) = prepared.problems
    assert problem["file"].endswith("grey.jpg") and "face" in problem["reason"]


def test_prepared_crops_are_cached(tmp_path, isolated_cache):
    ds = synthetic(identities=2, images_per_identity=3, singles=0)
    first = prepare(ds, ds.refs, FaceSpace())
    again = prepare(ds, ds.refs, FaceSpace())
    assert np.array_equal(first.crops, again.crops) and first.hashes == again.hashes


def test_identity_short_of_usable_photos_is_skipped_with_reason():
    ds = synthetic(identities=3, images_per_identity=20, singles=2)
    usable = {str(r.path) for r in ds.refs if r.path.name != "synthetic_000_0001.png"}
    result = split(ds, ProtocolConfig(identities=0), usable=usable)
    assert [p.identity for p in result.probes] == ["synthetic_001", "synthetic_002"]
    assert {s["identity"] for s in result.skipped_identities} >= {"synthetic_000"}


def test_a_fake_or_truncated_tgz_is_a_one_line_data_error(tmp_path, isolated_cache):
    from veilbench.data.datasets import lfw
    from veilbench.errors import DataError

    fake = tmp_path / "lfw-deepfunneled.tgz"
    fake.write_bytes(b"not a tar archive at all")
    with pytest.raises(DataError, match="cannot be read .*corrupt, truncated or not a .tgz") as e:
        lfw(fake)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "cache" / "lfw" / "lfw-deepfunneled").exists()  # none half-extracted
