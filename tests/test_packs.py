"""insightface model packs against a loopback HTTP server serving a small generated pack.

No real pack is needed (nor reachable here): the pack is a zip holding a tiny generated ONNX
"recognition model" under the real file name, nested in a folder as antelopev2's zip is.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.test_download import Server, _closed_port_url
from tests.test_onnx_models import _tiny_onnx
from veilbench.commands import build_cli
from veilbench.errors import WeightsError
from veilbench.models import packs
from veilbench.models.onnx_model import OnnxFaceModel
from veilbench.plugins import get_plugins, reset_plugins


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "insightface"))
    reset_plugins()
    yield tmp_path
    reset_plugins()


def _pack_zip(tmp: Path, tampered: bool = False) -> bytes:
    onnx_file = tmp / "w600k_r50.onnx"
    _tiny_onnx(onnx_file, "N", weights_as_inputs=False)
    data = onnx_file.read_bytes()
    if tampered:  # one extra byte: different bytes, same model
        data += b"\x00"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("buffalo_l/w600k_r50.onnx", data)
        z.writestr("buffalo_l/det_10g.onnx", b"not needed here")
    return buf.getvalue()


def _fetch(*args: str):
    return CliRunner().invoke(build_cli(), ["weights", "fetch", "buffalo_l", *args])


def test_fetch_unpacks_records_hash_and_registers_arcface_r50(env):
    body = _pack_zip(env)
    server = Server({"/buffalo_l.zip": body})
    try:
        assert "arcface_r50" not in [
            e.name for e in get_plugins().registries["models"].select("all")
        ]
        result = _fetch("--url", server.url + "/buffalo_l.zip")
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    folder = env / "cache" / "insightface" / "buffalo_l"
    assert sorted(p.name for p in folder.iterdir()) == ["det_10g.onnx", "w600k_r50.onnx"]
    record = json.loads((env / "cache" / "packs.json").read_text())["buffalo_l"]
    assert record["how"].startswith("trust on first use") and len(record["archive"]) == 64
    rows = json.loads(CliRunner().invoke(build_cli(), ["weights", "list", "--json"]).output)
    row = next(r for r in rows if r["name"] == "buffalo_l")
    assert "hash recorded (trust on first use" in row["status"] and row["path"] == str(folder)
    # the pack is on disk: arcface_r50 is in `all` and loads white-box, checked vs onnxruntime
    entry = get_plugins().registries["models"].get("arcface_r50")
    assert entry in get_plugins().registries["models"].select("all")
    model = entry.create()
    x = torch.rand(2, 3, 144, 144) * 255
    torch.testing.assert_close(model(x), model.forward_runtime(x), rtol=1e-5, atol=1e-5)
    checks = json.loads((env / "cache" / "onnx-checks.json").read_text())
    assert [c["file"] for c in checks.values()] == ["w600k_r50.onnx"]


def test_interrupted_download_resumes_with_a_range_request(env):
    body = _pack_zip(env)
    part = env / "cache" / "insightface" / "buffalo_l.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[: len(body) // 2])
    server = Server({"/buffalo_l.zip": body})
    try:
        result = _fetch("--url", server.url + "/buffalo_l.zip")
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert server.requests == [("/buffalo_l.zip", f"bytes={len(body) // 2}-")]
    assert not part.exists()
    assert (env / "cache" / "insightface" / "buffalo_l" / "w600k_r50.onnx").is_file()


def test_wrong_hash_is_refused_with_one_line(env, monkeypatch):
    good, bad = _pack_zip(env), _pack_zip(env, tampered=True)
    server = Server({"/buffalo_l.zip": good, "/tampered.zip": bad})
    try:
        assert _fetch("--url", server.url + "/buffalo_l.zip").exit_code == 0
        # a later download must match the hash recorded at the first one
        (env / "cache" / "insightface" / "buffalo_l" / "w600k_r50.onnx").unlink()
        result = _fetch("--url", server.url + "/tampered.zip")
        assert result.exit_code == 2
        errors = [x for x in result.output.splitlines() if x.startswith("Error:")]
        assert len(errors) == 1 and "refused" in errors[0] and "Traceback" not in result.output
        # a pinned hash is enforced from the first download on
        pinned = packs.ModelPack(**{**packs.PACKS["buffalo_l"].__dict__, "sha256": "0" * 64})
        monkeypatch.setitem(packs.PACKS, "buffalo_l", pinned)
        (env / "cache" / "packs.json").unlink()
        result = _fetch("--url", server.url + "/buffalo_l.zip")
    finally:
        server.close()
    assert result.exit_code == 2 and "not the pinned" in result.output


def test_pack_on_disk_is_found_without_a_download(env):
    folder = env / "insightface" / "models" / "buffalo_l"
    folder.mkdir(parents=True)
    _tiny_onnx(folder / "w600k_r50.onnx", "N", weights_as_inputs=False)
    result = _fetch("--url", _closed_port_url())  # nothing listens: a download would fail
    assert result.exit_code == 0 and str(folder) in result.output
    record = json.loads((env / "cache" / "packs.json").read_text())["buffalo_l"]
    assert "found on disk" in record["how"]
    # the recorded hash is enforced afterwards
    (folder / "w600k_r50.onnx").write_bytes(b"changed")
    with pytest.raises(WeightsError, match="was recorded for pack buffalo_l"):
        packs.fetch_pack("buffalo_l")


def test_torch_conversion_that_disagrees_with_onnxruntime_is_refused(env, monkeypatch):
    folder = env / "insightface" / "models" / "buffalo_l"
    folder.mkdir(parents=True)
    _tiny_onnx(folder / "w600k_r50.onnx", "N", weights_as_inputs=False)
    monkeypatch.setattr(OnnxFaceModel, "forward_runtime", lambda self, x: -self(x))
    with pytest.raises(WeightsError, match="disagrees with onnxruntime"):
        packs.create_pack_model("buffalo_l")
