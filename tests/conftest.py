"""Shared fixtures. Real faces come from ``../shared/data`` beside the checkout (not copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("VEILBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def lfw_dev() -> Path:
    """The real LFW subset; tests that need it skip with a reason where it is absent."""
    path = shared_data_dir() / "lfw-dev"
    if not path.is_dir():
        pytest.skip(f"real faces not found at {path} (set VEILBENCH_SHARED_DATA)")
    return path


# The plugin package's own tests run in their own process (test_plugin_pkg.py), with the
# package importable; collected here they would fail wherever it is not installed.
collect_ignore = ["plugin_pkg"]
