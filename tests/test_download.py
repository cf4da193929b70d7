"""The LFW download path against a loopback HTTP server: mirrors, md5, resume, corrupt archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from veilbench.data import datasets
from veilbench.data.download import download
from veilbench.data.images import save_png
from veilbench.errors import DataError


def _small_lfw_archive(tmp: Path) -> bytes:
    """A .tgz in LFW's layout (one top folder of <identity>/<image> files)."""
    rng = np.random.default_rng(0)
    for person in ("Ada_Lovelace", "Alan_Turing"):
        for i in range(2):
            save_png(
                tmp / "lfw-deepfunneled" / person / f"{person}_{i + 1:04d}.jpg.png",
                rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
            )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(tmp / "lfw-deepfunneled", arcname="lfw-deepfunneled")
    return buf.getvalue()


class Server:
    """Serves ``files`` (path -> bytes) on 127.0.0.1 with Range support; records requests."""

    def __init__(self, files: dict[str, bytes], ranges: bool = True):
        self.files, self.ranges, self.requests = files, ranges, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Range")))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                header = self.headers.get("Range")
                if outer.ranges and header and header.startswith("bytes="):
                    start = int(header[6:].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def archive(tmp_path) -> bytes:
    return _small_lfw_archive(tmp_path / "src")


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/lfw-deepfunneled.tgz"  # nothing listens there now


def test_mirror_fallback_and_md5(tmp_path, archive, monkeypatch):
    md5 = hashlib.md5(archive).hexdigest()
    server = Server(
        {
            "/good/lfw-deepfunneled.tgz": archive,
            "/bad/lfw-deepfunneled.tgz": archive[:-10] + b"0123456789",
        }
    )
    try:
        monkeypatch.setattr(datasets, "LFW_MD5", md5)
        monkeypatch.setattr(
            datasets,
            "LFW_MIRRORS",
            (
                _closed_port_url(),  # unreachable
                f"{server.url}/missing/lfw-deepfunneled.tgz",  # 404
                f"{server.url}/bad/lfw-deepfunneled.tgz",  # wrong bytes: md5 mismatch
                f"{server.url}/good/lfw-deepfunneled.tgz",
            ),
        )
        monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("VEILBENCH_LFW_MIRRORS", raising=False)
        ds = datasets.lfw()  # the real default path: not cached -> download -> extract
    finally:
        server.close()
    assert ds.name == "lfw" and len(ds.refs) == 4
    assert {r.identity for r in ds.refs} == {"Ada_Lovelace", "Alan_Turing"}
    tried = [p for p, _ in server.requests]
    assert tried == [
        "/missing/lfw-deepfunneled.tgz",
        "/bad/lfw-deepfunneled.tgz",
        "/good/lfw-deepfunneled.tgz",
    ]
    archive_path = tmp_path / "cache" / "lfw" / "lfw-deepfunneled.tgz"
    assert archive_path.read_bytes() == archive
    assert not archive_path.with_name("lfw-deepfunneled.tgz.part").exists()


def test_every_mirror_wrong_is_one_clear_error(tmp_path, archive):
    server = Server({"/a.tgz": archive})
    try:
        with pytest.raises(DataError, match="md5 .* expected 0{32}") as info:
            download([f"{server.url}/a.tgz", _closed_port_url()], tmp_path / "a.tgz", "0" * 32)
    finally:
        server.close()
    assert "--dataset PATH" in str(info.value)
    assert not (tmp_path / "a.tgz").exists()  # nothing half-done is left as the target


def test_resume_asks_only_for_the_rest(tmp_path, archive):
    md5 = hashlib.md5(archive).hexdigest()
    half = len(archive) // 2
    target = tmp_path / "lfw.tgz"
    target.with_name("lfw.tgz.part").write_bytes(archive[:half])  # an interrupted download
    server = Server({"/lfw.tgz": archive})
    try:
        download([f"{server.url}/lfw.tgz"], target, md5)
    finally:
        server.close()
    assert server.requests == [("/lfw.tgz", f"bytes={half}-")]
    assert target.read_bytes() == archive


def test_resume_restarts_when_the_server_ignores_range(tmp_path, archive):
    md5 = hashlib.md5(archive).hexdigest()
    target = tmp_path / "lfw.tgz"
    target.with_name("lfw.tgz.part").write_bytes(archive[:100])
    server = Server({"/lfw.tgz": archive}, ranges=False)
    try:
        download([f"{server.url}/lfw.tgz"], target, md5)
    finally:
        server.close()
    assert target.read_bytes() == archive  # a 200 answer rewrites the part, it is not appended


def test_corrupt_archive_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "lfw-deepfunneled.tgz"
    fake.write_bytes(b"\x1f\x8b" + b"not really gzip" * 100)
    with pytest.raises(DataError, match="cannot be read.*corrupt"):
        datasets.lfw(fake)
    assert not any((tmp_path / "cache" / "lfw").glob("lfw-deepfunneled*"))
