"""The one atomic writer: every file veilbench writes appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: str | os.PathLike, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file object for a temp file beside ``path``, renamed over it on success.

    A reader sees the old file or the new one, never half of one; on an error the temp file is
    removed. ``mode`` is the final permission (0o600 for secrets such as veil files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    with atomic_write(path, mode) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, mode: int = 0o644) -> Path:
    """Text (UTF-8), atomically; results and reports are meant to be shared (0644)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode)
