"""The one atomic writer: every file veilbench writes appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: int = 0o644, *, replace: bool = True
) -> Iterator[BinaryIO]:
    """A binary file object for a temp file beside ``path``, given its name on success.

    A reader sees the old file or the new one, never half of one; on an error the temp file is
    removed. ``mode`` is the final permission (0o600 for secrets such as veil files). With
    ``replace=False`` an existing name raises ``FileExistsError`` and is left alone: a hard link
    is atomic and fails where the name exists, where a check-then-rename could race.
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
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    with atomic_write(path, mode) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, mode: int = 0o644) -> Path:
    """Text (UTF-8), atomically; results and reports are meant to be shared (0644)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode)
