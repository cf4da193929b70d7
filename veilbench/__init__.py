"""veilbench: craft and benchmark visual face-privacy protections."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("veilbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from veilbench.hookspecs import hookimpl  # noqa: E402

__all__ = ["__version__", "hookimpl"]
