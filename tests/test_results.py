"""The results document's provenance: which code produced it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import veilbench
from veilbench import results
from veilbench.errors import ConfigError


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


# The contract ---------------------------------------------------------------------------------

DATA = Path(__file__).parent / "data"
SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.schema.json"


def test_schema_1_documents_of_the_last_release_load_through_the_contract():
    """A results file written by veilbench 0.1.0 (schema 1) is upgraded on read."""
    raw = json.loads((DATA / "results-schema1.json").read_text())
    assert raw["schema_version"] == 1
    doc = results.read_results(DATA / "results-schema1.json")
    assert doc.schema_version == results.SCHEMA_VERSION
    sface = doc.results.surrogates["sface"]
    assert sface.surrogates == ["sface"]
    assert (
        sface.msr["sface"]["held_out"].msr
        == raw["results"]["msr"]["sface"]["sface"]["held_out"]["msr"]
    )
    assert (
        sface.image_metrics.recovered.ssim
        == raw["results"]["image_metrics"]["sface"]["recovered"]["ssim"]
    )
    assert sface.robustness["gaussian"].strengths == [0.0, 30.0, 120.0]
    assert sface.craft_timing.per_veil == raw["timings"]["craft_s"]["sface"]["per_veil"]
    upgraded = doc.to_dict()
    results.validate(upgraded)  # an upgraded document is a valid current one
    assert results.ResultsDocument.from_dict(upgraded).to_dict() == upgraded  # round trip


def test_published_json_schema_is_the_generated_one():
    """docs/results.schema.json is generated from the records; regenerate it when they change:
    python -m veilbench.results schema > docs/results.schema.json"""
    assert json.loads(SCHEMA_DOC.read_text()) == results.json_schema()


def test_schema_rejects_what_the_contract_rejects():
    import jsonschema

    good = results.read_results(DATA / "results-schema1.json").to_dict()
    bad = json.loads(json.dumps(good))
    bad["results"]["surrogates"]["sface"]["msr"]["sface"]["craft"]["msr"] = "1.0"  # a string
    with pytest.raises(jsonschema.ValidationError):
        results.validate(bad)
    with pytest.raises(ConfigError, match="expected a number"):
        results.ResultsDocument.from_dict(bad)


def test_future_and_foreign_files_are_clear_errors(tmp_path):
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"schema_version": results.SCHEMA_VERSION + 1}))
    with pytest.raises(ConfigError, match="upgrade veilbench"):
        results.read_results(future)
    foreign = tmp_path / "foreign.json"
    foreign.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a veilbench results file"):
        results.read_results(foreign)


def test_privacy_is_derived_not_trusted():
    doc = results.read_results(DATA / "results-schema1.json").to_dict()
    doc["results"]["privacy"] = {"sface": {"held_out": {"service_msr": 0.0}}}  # tampered
    again = results.ResultsDocument.from_dict(doc)
    assert again.results.privacy()["sface"]["held_out"].service_msr == 1.0


def test_portable_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert results.portable_path(tmp_path / "a" / "b") == "a/b"
    assert results.portable_path("rel/x") == "rel/x"
    assert results.portable_path("/opt/somewhere/out") == ".../out"
    assert results.portable_path(Path.home() / "data" / "lfw").startswith("~/")
