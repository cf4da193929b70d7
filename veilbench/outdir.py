"""One writer per output folder: a run locks ``--out`` and clears what a killed run left there.

The lock is an advisory ``flock`` on ``OUT/.veilbench.lock``, held for the whole run. The kernel
drops it when the process ends in any way (SIGKILL included), so a lock is never stale; the file
itself holds the holder's pid, host and start time for the error message of the next run.

What a killed run left is only veilbench's own temp files (:data:`veilbench.files.TEMP_NAME`),
in the folders a run writes: ``--out`` itself and the veil folders under ``--out/veils``.
Anything else under ``--out``, a user's ``*.tmp`` file included, is never touched.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from veilbench.errors import ConfigError
from veilbench.files import check_writable_folder, remove_stale_temp_files

LOCK_NAME = ".veilbench.lock"
#: The folder under ``--out`` where a run keeps its veils, one sub-folder per surrogate set.
VEILS = "veils"


def check_output_folder(out: str | os.PathLike) -> Path:
    """``out`` as a Path, or a one-line error when it cannot be a writable folder (before any
    work)."""
    return check_writable_folder(out, "--out")


def owned_folders(out: Path) -> list[Path]:
    """The folders a run writes into: ``out`` and its veil folders (never a symlink)."""
    veils = out / VEILS
    if not veils.is_dir() or veils.is_symlink():
        return [out]
    return [out, veils, *(d for d in sorted(veils.iterdir()) if d.is_dir() and not d.is_symlink())]


@contextmanager
def claim_output(out: str | os.PathLike) -> Iterator[Path]:
    """Hold ``out`` for this process; a second run on it fails at once, naming the first."""
    import fcntl

    path = check_output_folder(out)
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)  # never a planted link
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"--out {out} is in use by another veilbench run ({_holder(lock)}): wait for it "
                "to finish or choose another --out"
            ) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        # Only now, holding the lock, is every veilbench temp file here a dead run's leftover.
        for folder in owned_folders(path):
            remove_stale_temp_files(folder)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _holder(lock: Path) -> str:
    """Who holds ``lock``, as its file says."""
    try:
        info = json.loads(lock.read_text())
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} on {info['host']}, started {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"
