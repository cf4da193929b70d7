"""One writer per output folder: a run locks ``--out`` and clears what a killed run left there.

The lock is an advisory ``flock`` on ``OUT/.veilbench.lock``, held for the whole run. The kernel
drops it when the process ends in any way (SIGKILL included), so a lock is never stale; the file
itself holds the holder's pid, host and start time for the error message of the next run.
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
from veilbench.veilfile import remove_stale_temp_files

LOCK_NAME = ".veilbench.lock"


def check_output_folder(out: str | os.PathLike) -> Path:
    """``out`` as a Path, or a one-line error when it cannot be a folder (before any work)."""
    path = Path(out)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"--out {out}: {parent} is a file, not a folder; choose another --out"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"--out {out}: {parent} is not writable; choose another --out")
            break
    return path


@contextmanager
def claim_output(out: str | os.PathLike) -> Iterator[Path]:
    """Hold ``out`` for this process; a second run on it fails at once, naming the first."""
    import fcntl

    path = check_output_folder(out)
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
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
        # Only now, holding the lock, is every temp file here a dead run's leftover.
        for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
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
