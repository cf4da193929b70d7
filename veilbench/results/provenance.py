"""Where a result was produced: time, versions, device, machine and the git state of the code."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import veilbench


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    """Where a result was produced: versions, device and machine."""
    import numpy
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "hostname_hash": _short_hash(platform.node()),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _git(*args: str) -> str | None:
    """Output of a git command in the veilbench source tree (None outside a checkout)."""
    root = Path(veilbench.__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    """The commit of the veilbench source tree, when it is a git checkout."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked veilbench sources differ from that commit (the result may not match it)."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "veilbench", "plugins")
    return None if status is None else bool(status)


def portable_path(path: str | os.PathLike | None) -> str | None:
    """A path as a results file may record it: relative to the working folder when inside it,
    ``~/...`` under the home folder, else only its last part (no machine's temp folders)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_absolute():
        return p.as_posix()
    p = p.resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (Path.home().resolve(), "~/")):
        if base == p or base in p.parents:
            return prefix + (p.relative_to(base).as_posix() or ".")
    return f".../{p.name}"
