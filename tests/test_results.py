"""The results contract: provenance, reading every schema version, the schema, rates."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import veilbench
from veilbench import results
from veilbench.errors import ConfigError
from veilbench.results import provenance


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
    assert provenance.git_dirty() is False
    assert len(provenance.git_commit() or "") == 40
    (package / "__init__.py").write_text("x = 2\n")
    assert provenance.git_dirty() is True
    assert results.environment()["git_dirty"] is True


# The contract ---------------------------------------------------------------------------------

DATA = Path(__file__).parent / "data"
SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.schema.json"


def _records(doc: results.ResultsDocument, key: str = "sface") -> dict:
    return doc.results.protectors["veil"].surrogates[key].measurements


def test_schema_1_documents_of_the_last_release_load_through_the_contract():
    """A results file written by veilbench 0.1.0 (schema 1) is upgraded on read."""
    raw = json.loads((DATA / "results-schema1.json").read_text())
    assert raw["schema_version"] == 1
    doc = results.read_results(DATA / "results-schema1.json")
    assert doc.schema_version == results.SCHEMA_VERSION
    sface = doc.results.protectors["veil"].surrogates["sface"]
    assert sface.surrogates == ["sface"]
    records = sface.measurements
    cell = records["msr"]["sface"]["held_out"]
    assert cell.msr.value == raw["results"]["msr"]["sface"]["sface"]["held_out"]["msr"]
    assert cell.msr.photos == cell.n  # a bare number becomes a rate with its count
    assert (
        records["image_quality"].recovered.ssim
        == raw["results"]["image_metrics"]["sface"]["recovered"]["ssim"]
    )
    assert records["robustness"]["gaussian"].strengths == [0.0, 30.0, 120.0]
    assert records["cost"].per_veil == raw["timings"]["craft_s"]["sface"]["per_veil"]
    upgraded = doc.to_dict()
    results.validate(upgraded)  # an upgraded document is a valid current one
    assert results.ResultsDocument.from_dict(upgraded).to_dict() == upgraded  # round trip


def test_schema_2_documents_keep_every_number():
    """Schema 2 (one protector, fixed fields) reads into protectors and measurement records."""
    raw = json.loads((DATA / "results-schema2.json").read_text())
    assert raw["schema_version"] == 2
    doc = results.read_results(DATA / "results-schema2.json")
    old = raw["results"]["surrogates"]["sface"]
    records = _records(doc)
    assert doc.results.protectors["veil"].config == raw["config"]["protector_config"]
    assert records["msr"]["sface"]["craft"].msr.value == old["msr"]["sface"]["craft"]["msr"]
    assert [a.k for a in records["adversaries"].results] == [a["k"] for a in old["adversaries"]]
    first = records["adversaries"].results[0].reid["sface"]
    assert first.rank1.value == old["adversaries"][0]["reid"]["sface"]["rank1"]
    assert first.rank1.identities == old["adversaries"][0]["identities"]
    face = records["perception"].face
    assert face.detected.value == old["perception"]["face"]["detected"]
    assert face.detected.photos == old["perception"]["face"]["n"]
    assert set(records["convergence"]) == set(old["convergence"])
    clean = doc.results.measurements["clean"]["sface"]["held_out"]
    assert clean.value == raw["results"]["clean"]["sface"]["held_out"]
    # The derived summary is recomputed from the upgraded records, as schema 2 did on read.
    held = records["privacy"]["held_out"]
    assert held.service_msr == raw["results"]["privacy"]["sface"]["held_out"]["service_msr"]
    results.validate(doc.to_dict())


def test_published_json_schema_is_the_generated_one():
    """docs/results.schema.json is generated from the records; regenerate it when they change:
    veilbench results schema > docs/results.schema.json"""
    assert json.loads(SCHEMA_DOC.read_text()) == results.json_schema()


def test_schema_rejects_what_the_contract_rejects():
    import jsonschema

    good = results.read_results(DATA / "results-schema1.json").to_dict()
    bad = json.loads(json.dumps(good))
    sface = bad["results"]["protectors"]["veil"]["surrogates"]["sface"]
    sface["measurements"]["msr"]["sface"]["craft"]["msr"]["value"] = "1.0"  # a string
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
    sface = doc["results"]["protectors"]["veil"]["surrogates"]["sface"]["measurements"]
    sface["privacy"]["held_out"]["service_msr"] = 0.0  # tampered
    again = results.ResultsDocument.from_dict(doc)
    assert _records(again)["privacy"]["held_out"].service_msr == 1.0


def test_several_protectors_in_one_document_are_named_apart():
    """One document may hold several protectors: their sets (and metric ids) carry the name."""
    doc = results.read_results(DATA / "results-schema1.json")
    veil = doc.results.protectors["veil"]
    doc.results.protectors["blur"] = results.ProtectorResults(
        "blur", {"sigma": 6.0}, {"sface": veil.surrogates["sface"]}
    )
    assert [w.key for w in doc.results.sets()] == ["veil:sface", "blur:sface"]
    ids = {m.id for m in doc.metrics()}
    assert "msr/veil:sface->sface/held_out" in ids and "msr/blur:sface->sface/held_out" in ids
    again = results.ResultsDocument.from_dict(doc.to_dict())
    assert list(again.results.protectors) == ["veil", "blur"]
    results.validate(again.to_dict())


def test_a_plugin_record_without_its_plugin_is_kept_raw():
    """A record whose measurement is not installed stays a plain dict, shown nowhere, kept."""
    doc = results.read_results(DATA / "results-schema1.json").to_dict()
    sface = doc["results"]["protectors"]["veil"]["surrogates"]["sface"]["measurements"]
    sface["someone_elses"] = {"score": 0.5}
    again = results.ResultsDocument.from_dict(doc)
    assert _records(again)["someone_elses"] == {"score": 0.5}
    assert not any(m.id.startswith("someone") for m in again.metrics())
    results.validate(again.to_dict())


def test_rate_of_counts_photos_and_identities():
    from veilbench.measurements.records import rate_of
    from veilbench.results import Rate

    rate = rate_of([True, False, True, True], ["a", "a", "b", "b"], per_identity=True)
    assert (rate.value, rate.photos, rate.identities) == (0.75, 4, 2)
    assert rate.per_identity == {"a": 0.5, "b": 1.0}
    assert rate.outcomes == {"a": "10", "b": "11"}  # what compare pairs photo by photo
    # Two people: Wilson over identities (the conservative rule), never a photo-level interval.
    assert rate.interval.method == "wilson-identity" and rate.interval.width > 0.5
    assert isinstance(rate, Rate)
    empty = rate_of([], [])
    assert empty.value != empty.value and empty.photos == 0  # NaN: written as null


def test_portable_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert results.portable_path(tmp_path / "a" / "b") == "a/b"
    assert results.portable_path("rel/x") == "rel/x"
    assert results.portable_path("/opt/somewhere/out") == ".../out"
    assert results.portable_path(Path.home() / "data" / "lfw").startswith("~/")
