"""Hand-made hostile files for the fault tests: size bombs, zip bombs, truncations, junk."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def size_bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    data += _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def junk_zip_as_jpeg(path: Path) -> Path:
    """A zip archive of junk, named like a photo."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("junk.bin", bytes(range(256)) * 64)
    path.write_bytes(buf.getvalue())
    return path


def truncated(path: Path, source: Path, keep: int = 2000) -> Path:
    """The first ``keep`` bytes of a real photo."""
    path.write_bytes(source.read_bytes()[:keep])
    return path


def zip_bomb_veil(path: Path, member_bytes: int = 1 << 30, side: int = 112) -> Path:
    """A veil file whose pixel member inflates to ``member_bytes`` (zeros: about 1 MB on disk
    per GiB). Its metadata is that of a real plain veil."""
    meta = {
        "format": "veilbench-veil",
        "format_version": 1,
        "alpha": 0.2,
        "protector": "veil",
        "shape": [3, side, side],
        "identity": "p",
        "config": {},
        "surrogates": [],
        "image_sha256": [],
        "clip": "veil",
        "stats": {},
        "seed": None,
        "version": "0",
        "created": "",
    }
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("meta.json", json.dumps(meta))
        with z.open("veil.npy", "w", force_zip64=True) as f:
            for _ in range(member_bytes // len(block)):
                f.write(block)
    return path


class InflateCounter:
    """Counts the bytes zlib inflates while installed (``install(monkeypatch)``)."""

    def __init__(self) -> None:
        self.bytes = 0

    def install(self, monkeypatch) -> InflateCounter:
        real = zlib.decompressobj
        counter = self

        class Counting:
            def __init__(self, *args, **kwargs) -> None:
                self._inner = real(*args, **kwargs)

            def decompress(self, data, *args) -> bytes:
                out = self._inner.decompress(data, *args)
                counter.bytes += len(out)
                return out

            def __getattr__(self, name):
                return getattr(self._inner, name)

        monkeypatch.setattr(zlib, "decompressobj", Counting)
        return self
