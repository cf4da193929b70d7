"""The results document's provenance: which code produced it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import veilbench
from veilbench import results


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_dirty_follows_changes_to_tracked_sources(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    package = repo / "veilbench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=a", "add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init")
    monkeypatch.setattr(veilbench, "__file__", str(package / "__init__.py"))
    assert results.git_dirty() is False
    assert len(results.git_commit() or "") == 40
    (package / "__init__.py").write_text("x = 2\n")
    assert results.git_dirty() is True
    assert results.environment()["git_dirty"] is True
