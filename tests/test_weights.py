from __future__ import annotations

import hashlib

import pytest

from veilbench.errors import WeightsError
from veilbench.weights import Url, WeightFile, resolve, status


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VEILBENCH_WEIGHTS", raising=False)
    return tmp_path


def make_weight(tmp_path, payload=b"weights!"):
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    return src, WeightFile("w.bin", digest, len(payload), (Url(src.as_uri()),))


def test_fetch_verifies_and_caches(isolated_cache):
    src, w = make_weight(isolated_cache)
    path = resolve(w)
    assert path.read_bytes() == b"weights!" and "cache" in str(path)
    src.unlink()
    assert resolve(w) == path  # second time from the cache, no source needed
    assert status(w).reason == "on disk"


def test_corrupt_local_file_names_file_hash_and_fix(isolated_cache, monkeypatch):
    _, w = make_weight(isolated_cache)
    local = isolated_cache / "mine"
    local.mkdir()
    (local / "w.bin").write_bytes(b"weights?")
    monkeypatch.setenv("VEILBENCH_WEIGHTS", str(local))
    with pytest.raises(WeightsError) as err:
        resolve(w)
    msg = str(err.value)
    assert "corrupt" in msg and w.sha256 in msg and "veilbench weights fetch w.bin" in msg


def test_partial_file_reports_size(isolated_cache, monkeypatch):
    _, w = make_weight(isolated_cache)
    local = isolated_cache / "mine"
    local.mkdir()
    (local / "w.bin").write_bytes(b"wei")
    monkeypatch.setenv("VEILBENCH_WEIGHTS", str(local))
    with pytest.raises(WeightsError, match="partial"):
        resolve(w)


def test_bad_source_leaves_no_file(isolated_cache):
    src, w = make_weight(isolated_cache)
    src.write_bytes(b"tampered")  # same length, different bytes
    with pytest.raises(WeightsError, match="could not fetch"):
        resolve(w)
    assert not list((isolated_cache / "cache").rglob("w.bin"))


def test_missing_without_fetch(isolated_cache):
    _, w = make_weight(isolated_cache)
    with pytest.raises(WeightsError, match="not on disk"):
        resolve(w, fetch=False)


def test_fetch_all_skips_a_file_only_on_github_when_unreachable(isolated_cache, monkeypatch):
    from click.testing import CliRunner

    from tests.test_download import _closed_port_url
    from veilbench import weights
    from veilbench.commands import build_cli

    src, reachable = make_weight(isolated_cache)
    unreachable = WeightFile("gone.bin", "0" * 64, 3, (Url(_closed_port_url()),))
    known = {"w.bin": reachable, "gone.bin": unreachable}
    monkeypatch.setattr(weights, "KNOWN_WEIGHTS", known)
    result = CliRunner().invoke(build_cli(), ["weights", "fetch", "all"])
    assert result.exit_code == 0, result.output
    assert "gone.bin: skipped, not reachable here" in result.output
    assert "$VEILBENCH_WEIGHTS/gone.bin" in result.output
    # named explicitly, the same file is an error (one line, exit 2)
    result = CliRunner().invoke(build_cli(), ["weights", "fetch", "gone.bin"])
    assert result.exit_code == 2 and result.output.startswith("Error: could not fetch")
