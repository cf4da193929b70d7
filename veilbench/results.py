"""The results file: one versioned JSON document per run, written atomically.

Schema (``schema_version`` 1), top-level keys:

- ``schema_version``, ``veilbench_version``, ``created_utc``
- ``environment``: python, torch, cuda, device name, OS, CPU count, git commit when available
  and ``git_dirty`` (tracked sources changed since that commit)
- ``plugins``: every plugin with package, version and status
- ``config``: the full effective configuration (seeds and every hyper-parameter)
- ``dataset``, ``split``, ``models`` (cards with weight sha256), ``skipped_models``
- ``results``: ``msr`` (surrogate -> target -> subset -> numbers), ``image_metrics``,
  ``robustness``, ``clean``, ``per_identity``
- ``timings`` (seconds), ``warnings``, ``problems`` (unusable files with reasons)

Numbers are JSON numbers, never strings; NaN is written as ``null``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import veilbench

SCHEMA_VERSION = 1


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
    import hashlib

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


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, tuples -> lists, numpy scalars -> Python numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: str | os.PathLike, document: Any) -> Path:
    """Write a document as JSON, atomically (NaN written as null)."""
    text = json.dumps(_clean(document), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write so a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Load a results file, checking it is one."""
    from veilbench.errors import ConfigError

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read results file {path}: {exc}") from exc
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise ConfigError(f"{path} is not a veilbench results file (no schema_version)")
    if doc["schema_version"] > SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has schema_version {doc['schema_version']}; this veilbench reads up to "
            f"{SCHEMA_VERSION}: upgrade veilbench"
        )
    return doc


def new_document(config: dict[str, Any], plugins: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "veilbench_version": veilbench.__version__,
        "created_utc": utc_now(),
        "environment": environment(),
        "plugins": plugins,
        "config": config,
        "results": {},
        "timings": {},
        "warnings": [],
        "problems": [],
    }
