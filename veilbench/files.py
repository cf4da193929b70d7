"""The one atomic writer: every file veilbench writes appears whole or not at all.

Its temp files carry veilbench's own mark (``.NAME.XXXXXXXX.veilbench-tmp``), so cleaning up
after a killed write removes only what veilbench created, never a user's ``*.tmp`` file.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from veilbench.errors import ConfigError, DataError

#: The suffix of every temp file :func:`atomic_write` creates.
TEMP_SUFFIX = ".veilbench-tmp"
#: ``tempfile.mkstemp(prefix=".NAME.", suffix=TEMP_SUFFIX)``: 8 random characters.
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))
#: Errors that mean the disk (or the user's quota) is full.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: int = 0o644, *, replace: bool = True
) -> Iterator[BinaryIO]:
    """A binary file object for a temp file beside ``path``, given its name on success.

    A reader sees the old file or the new one, never half of one; on an error (a full disk
    included) the temp file is removed and the previous file is left as it was. ``mode`` is the
    final permission (0o600 for secrets such as veil files). The temp file is created
    exclusively and the final name is set by rename or link, which replace a symlink planted
    there instead of following it. With ``replace=False`` an existing name raises
    ``FileExistsError`` and is left alone: a hard link is atomic and fails where the name
    exists, where a check-then-rename could race.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
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
    except OSError as exc:
        if exc.errno in _FULL:
            kept = "the previous file is left as it was" if path.exists() else "nothing written"
            raise DataError(f"{path}: the disk is full ({exc.strerror}); {kept}") from exc
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    with atomic_write(path, mode) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, mode: int = 0o644) -> Path:
    """Text (UTF-8), atomically; results and reports are meant to be shared (0644)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode)


def remove_stale_temp_files(folder: str | os.PathLike, name: str = "*") -> list[Path]:
    """Delete the temp files that an :func:`atomic_write` of ``name`` into ``folder`` left
    when it was killed (only ``folder`` itself; only veilbench's own temp names)."""
    removed = []
    for tmp in Path(folder).glob(f".{name}.*{TEMP_SUFFIX}"):
        if TEMP_NAME.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def private_folder(folder: str | os.PathLike) -> Path:
    """``folder``, created owner-only (0700, missing parents too) when it does not exist.

    Folders holding veils are private: their file names say whose veils exist.
    """
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for made in missing:
        os.chmod(made, 0o700)  # mkdir's mode goes through the umask
    return folder


def check_writable_folder(folder: str | os.PathLike, option: str) -> Path:
    """``folder`` as a Path, or one line saying why files cannot be written there.

    Checked before any work: the nearest existing folder must be a folder, and a probe file
    must be creatable in it (which also catches read-only and immutable folders, and root's
    access to them).
    """
    path = Path(folder)
    for parent in (path, *path.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ConfigError(
                    f"{option} {folder}: {parent} is a file, not a folder; choose another {option}"
                )
            try:
                fd, probe = tempfile.mkstemp(dir=parent, prefix=".probe.", suffix=TEMP_SUFFIX)
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                raise ConfigError(
                    f"{option} {folder}: {parent} is not writable ({exc.strerror}); choose "
                    f"another {option}"
                ) from None
            break
    return path
