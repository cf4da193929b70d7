"""Shared fixtures. Real faces come from ``../shared/data`` beside the checkout (not copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("VEILBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared(name: str, what: str) -> Path:
    path = shared_data_dir() / name
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path} (set VEILBENCH_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def lfw_dev() -> Path:
    """The real LFW subset; tests that need it skip with a reason where it is absent."""
    return _shared("lfw-dev", "real faces")


@pytest.fixture(scope="session")
def celeb_dev() -> Path:
    """Raw web photos that need detection and alignment; skip with a reason where absent."""
    return _shared("celeb-dev", "raw web photos")


def shared_weights_dir() -> Path:
    return Path(os.environ.get("VEILBENCH_SHARED_WEIGHTS", REPO.parent / "shared" / "weights"))


@pytest.fixture
def shared_weights(monkeypatch) -> Path:
    """Weight files that ship in no registry package, as ``$VEILBENCH_WEIGHTS``; skip if absent."""
    path = shared_weights_dir()
    if not path.is_dir():
        pytest.skip(f"weight files not found at {path} (set VEILBENCH_SHARED_WEIGHTS)")
    monkeypatch.setenv("VEILBENCH_WEIGHTS", str(path))
    return path


# The plugin package's own tests run in their own process (test_plugin_pkg.py), with the
# package importable; collected here they would fail wherever it is not installed.
collect_ignore = ["plugin_pkg"]


@pytest.fixture
def tiny_plugins(tmp_path, monkeypatch):
    """The installed plugins plus two RANDOM-WEIGHT models (plumbing tests), a private cache."""
    from tests.helpers import plugins_with_tiny_models
    from veilbench.plugins import reset_plugins

    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VEILBENCH_PROGRESS", "0")
    reset_plugins(plugins_with_tiny_models())
    yield
    reset_plugins()
