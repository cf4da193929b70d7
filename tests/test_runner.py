"""End-to-end plumbing of `veilbench run` with RANDOM-WEIGHT tiny models on synthetic faces.

These check the pipeline's structure, resumability and caching, not protection quality (the
real-model, real-face checks live in test_protectors.py and test_real_run.py).
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from tests.documents import records
from veilbench.commands import build_cli
from veilbench.results import SCHEMA_VERSION, read_results, validate


def run_cli(args):
    result = CliRunner().invoke(build_cli(), args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


ARGS = [
    "run",
    "--models",
    "tiny_random_a,tiny_random_b",
    "--dataset",
    "synthetic",
    "--identities",
    "2",
    "--max-distractors",
    "20",
    "--attacks",
    "gaussian",
    "--quiet",
]
VEIL = ["--protector", "veil", "--param", "iterations=2"]


def test_run_writes_results_and_report_and_resumes(tiny_plugins, tmp_path):
    out = tmp_path / "run"
    run_cli([*ARGS, *VEIL, "--out", str(out)])
    validate(json.loads((out / "results.json").read_text()))  # the published JSON Schema
    doc = read_results(out / "results.json")
    assert doc.schema_version == SCHEMA_VERSION and doc.dataset["synthetic"]
    assert any("synthetic" in w for w in doc.warnings)
    assert doc.config["protector_config"]["iterations"] == 2
    assert doc.config["seed"] == 0 and doc.environment["torch"]
    assert doc.config["profile_applied"] == "full"  # a dataset was named: no quick profile
    surrogates = doc.results.protectors["veil"].surrogates
    assert set(surrogates) == {"tiny_random_a", "tiny_random_b"}
    for s in surrogates.values():
        assert set(s.measurements["msr"]) == {"tiny_random_a", "tiny_random_b"}
        for subset in ("craft", "held_out"):
            cell = s.measurements["msr"]["tiny_random_a"][subset]
            assert 0.0 <= cell.msr.value <= 1.0
            assert cell.msr.photos == cell.n and cell.msr.identities == 2
            assert set(cell.msr.per_identity) == {p["identity"] for p in doc.split["probes"]}
    a = records(doc, "tiny_random_a")
    # Privacy under attack: the default adversaries at every k the photos allow.
    attacked = a["adversaries"].results
    assert {a.adversary for a in attacked} == {"known_pair", "difference", "average"}
    assert all(set(a.reid) == {"tiny_random_a", "tiny_random_b"} for a in attacked)
    known = [a for a in attacked if a.adversary == "known_pair"]
    assert known and min(a.quality.ssim for a in known) > 0.95  # exact algebra
    curve = a["robustness"]["gaussian"]
    assert len(curve.protected["tiny_random_b"]) == len(curve.strengths)
    assert (out / "report.html").read_text().count("msr-held_out") >= 1
    assert a["samples"]  # thumbnails on by default
    assert len(doc.split["probes"]) == 2
    privacy = a["privacy"]["held_out"]
    assert privacy.attacker_models == ["tiny_random_b"]
    assert privacy.attacker_msr == a["msr"]["tiny_random_b"]["held_out"].msr.value
    # The per-person breakdown names the least protected person among the probes.
    people = a["per_identity"]
    assert people.worst_black_box in people.identities and len(people.identities) == 2
    assert not doc.problems or all(p.get("stage") != "measure" for p in doc.problems)

    veils = sorted((out / "veils").rglob("*.veil"))
    assert len(veils) == 4  # 2 surrogates x 2 identities
    assert all(os.stat(v).st_mode & 0o077 == 0 for v in veils)  # veils are secrets
    mtimes = [v.stat().st_mtime_ns for v in veils]
    run_cli([*ARGS, *VEIL, "--out", str(out)])
    assert [v.stat().st_mtime_ns for v in veils] == mtimes  # resumed, not crafted again
    again = read_results(out / "results.json")
    assert again.timings["gallery_embeddings_computed"] == {
        "tiny_random_a": 0,
        "tiny_random_b": 0,
    }
    assert [
        s.measurements["msr"] for s in again.results.protectors["veil"].surrogates.values()
    ] == [s.measurements["msr"] for s in surrogates.values()]  # deterministic


def test_results_record_no_machine_paths(tiny_plugins, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = tmp_path / "elsewhere" / "run"  # outside the working folder
    run_cli([*ARGS, "--protector", "none", "--out", str(out)])
    text = (out / "results.json").read_text()
    assert str(tmp_path) not in text, "an absolute machine path leaked into results.json"
    doc = read_results(out / "results.json")
    assert doc.config["out"] == ".../run"
    assert len(doc.dataset["fingerprint"]) == 64
    run_cli([*ARGS, "--protector", "none", "--out", "rel/run"])
    assert read_results(work / "rel" / "run" / "results.json").config["out"] == "rel/run"


def test_quick_profile_on_the_synthetic_fallback_only(tiny_plugins, tmp_path, monkeypatch):
    """No dataset asked for or reachable: the quick profile, except where the user said."""
    from veilbench.data import datasets

    def no_lfw(*args, **kwargs):
        raise datasets.DataError("no LFW here")

    monkeypatch.setattr(datasets, "_find_lfw", no_lfw)
    monkeypatch.delenv("VEILBENCH_DATA", raising=False)
    out = tmp_path / "quick"
    args = ["run", "--models", "tiny_random_a", "--param", "iterations=3", "--quiet"]
    run_cli([*args, "--out", str(out)])
    doc = read_results(out / "results.json")
    assert doc.config["profile_applied"] == "quick"
    assert doc.config["protocol"]["identities"] == 2
    assert doc.config["protector_params"]["iterations"] == 3  # given: the profile keeps it
    assert doc.config["attacks"] == "gaussian"
    assert "gaussian" in records(doc, "tiny_random_a")["robustness"]
    assert "Quick profile" in (out / "report.html").read_text()
    run_cli([*args, "--profile", "full", "--identities", "3", "--out", str(tmp_path / "full")])
    full = read_results(tmp_path / "full" / "results.json")
    assert full.config["profile_applied"] == "full" and full.config["attacks"] is None


def test_none_protector_is_a_perfect_clean_baseline(tiny_plugins, tmp_path):
    out = tmp_path / "none"
    run_cli([*ARGS, "--protector", "none", "--out", str(out)])
    doc = read_results(out / "results.json")
    sets = doc.results.protectors["none"].surrogates
    for s in sets.values():
        for cells in s.measurements["msr"].values():
            assert cells["held_out"].msr.value == 1.0
    protected = records(doc, "tiny_random_a", "none")["image_quality"].protected
    assert protected.ssim == pytest.approx(1.0)
    assert "convergence" not in records(doc, "tiny_random_a", "none")  # no veil to converge
    # Unprotected photos: the perception proxies see exactly what they see on the originals.
    from veilbench.measurements.perception import PROCESSING

    for s in sets.values():
        p = s.measurements["perception"]
        assert p is not None and p.face is not None and p.face.n > 0
        assert p.face.detected == p.face.detected_clean
        assert list(p.processed) == list(PROCESSING)
        for cell in p.processed.values():
            assert cell.protected == cell.clean
            assert set(cell.protected) == set(s.measurements["msr"])
    ids = {m.id for m in doc.metrics()}
    assert "face_detected/tiny_random_a" in ids
    assert "processed/tiny_random_a/invert->tiny_random_b" in ids
    assert "processed/tiny_random_a/invert->tiny_random_a" not in ids  # white-box: not a loss
    assert 'id="perception-table"' in (out / "report.html").read_text()


def test_report_rerenders_from_json_alone(tiny_plugins, tmp_path):
    out = tmp_path / "r"
    run_cli([*ARGS, "--protector", "none", "--out", str(out)])
    target = tmp_path / "again.html"
    run_cli(["report", str(out / "results.json"), "-o", str(target)])
    assert target.read_text() == (out / "report.html").read_text()


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("veilbench_example") is None,
    reason="the example plugin is not installed (pip install ./plugins/example)",
)
def test_example_plugin_is_listed_and_usable(tiny_plugins, tmp_path):
    listed = run_cli(["list", "attacks", "--json"]).output
    assert {"name": "posterize", "plugin": "example"}.items() <= next(
        e for e in json.loads(listed) if e["name"] == "posterize"
    ).items()
    out = tmp_path / "ex"
    run_cli(
        [
            "run",
            "--protector",
            "example_grey",
            "--models",
            "tiny_random_a",
            "--dataset",
            "synthetic",
            "--identities",
            "2",
            "--max-distractors",
            "10",
            "--attacks",
            "posterize",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    result = records(read_results(out / "results.json"), "tiny_random_a", "example_grey")
    assert result["robustness"]["posterize"].strengths == [8, 5, 3, 2, 1]
    assert result["image_quality"].protected.ssim < 0.9


def test_samples_off_keeps_photos_out_of_results_and_report(tiny_plugins, tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "veilbench.toml"
    config.write_text("[run]\nsamples = false\n")
    run_cli([*ARGS, *VEIL, "--config", str(config), "--out", str(out)])
    text = (out / "results.json").read_text()
    sets = json.loads(text)["results"]["protectors"]["veil"]["surrogates"]
    assert all("samples" not in s["measurements"] for s in sets.values())
    assert "data:image/png" not in text
    assert "No sample images in this document." in (out / "report.html").read_text()


def test_unconverged_veils_are_reported_apart_from_privacy(tiny_plugins, tmp_path):
    """An unreachable visual target (RMS 1000): every veil misses its criteria at the cap, and
    results, warnings, compare metrics and the report all say so."""
    from veilbench.measurements.convergence import Convergence
    from veilbench.report import build_view

    out = tmp_path / "run"
    args = [*ARGS[:2], "tiny_random_a", *ARGS[3:], "--protector", "veil", "--out", str(out)]
    result = run_cli([*args, "--param", "iterations=2", "--param", "stop_rms=1000"])
    assert "(2/2 veils UNCONVERGED)" in result.output  # the console summary
    validate(json.loads((out / "results.json").read_text()))
    doc = read_results(out / "results.json")
    s = records(doc, "tiny_random_a")
    veils = s["convergence"]
    assert len(veils) == 2 and all(c.converged is False for c in veils.values())
    for record in veils.values():
        assert record.converged is False and record.iterations == record.cap == 8
        (fit,) = record.surrogates.values()  # keyed by the model's own name
        assert fit.threshold is not None and fit.matched is not None
    assert any("did not converge" in w for w in doc.warnings)
    assert s["privacy"]["held_out"].unconverged_veils == 2
    metric = {m.id: m for m in doc.metrics()}["unconverged/tiny_random_a"]
    assert metric.value == 2.0 and Convergence.metrics["unconverged"].direction == "lower"
    sections = {section["name"]: section["data"] for section in build_view(doc)["sections"]}
    assert sections["convergence"]["sets"][0]["unconverged"] == sorted(veils)
    white = [c for c in sections["msr"]["tables"][0]["rows"][0]["cells"] if c["white_box"]]
    assert white and all(c["unconverged"] == 2 for c in white)
    html = (out / "report.html").read_text()
    assert "2 of 2 veils crafted with tiny_random_a did not converge" in html
    assert 'data-converged="false"' in html and "2 unconverged" in html


def test_measurements_are_chosen_and_a_failing_one_is_a_problem(tiny_plugins, tmp_path):
    """--measurements picks some (with what they read); one that raises goes to problems."""
    import types

    from veilbench import hookimpl
    from veilbench.measurements.contract import Measurement
    from veilbench.plugins import get_plugins

    class Fails(Measurement):
        name = "always_fails"
        needs = ("protected",)

        def evaluate(self, ctx):
            raise RuntimeError("out of film")

    @hookimpl
    def register_measurements(register):
        register("always_fails", Fails, **Fails.info())

    broken = types.ModuleType("broken_measurement")
    broken.register_measurements = register_measurements
    plugins = get_plugins()  # the tiny models' plugins, plus this one
    plugins._add(plugins.info.setdefault("broken", _info("broken")), broken)
    plugins._collect(plugins.info["broken"])
    out = tmp_path / "run"
    spec = "per_identity,always_fails,image_quality"
    result = run_cli([*ARGS, "--protector", "none", "--measurements", spec, "--out", str(out)])
    assert "measurement always_fails failed (tiny_random_a): RuntimeError: out of film" in (
        result.output
    )
    doc = read_results(out / "results.json")
    kept = records(doc, "tiny_random_a", "none")
    # msr: read by per_identity; privacy: derived from msr whenever a file is read
    assert set(kept) == {"msr", "per_identity", "image_quality", "privacy"}
    failed = [p for p in doc.problems if p.get("stage") == "measure"]
    assert {p["surrogates"] for p in failed} == {"tiny_random_a", "tiny_random_b"}
    assert failed[0]["measurement"] == "always_fails"
    assert "RuntimeError: out of film" in (out / "report.html").read_text()
    listed = json.loads(run_cli(["list", "measurements", "--json"]).output)
    msr = next(e for e in listed if e["name"] == "msr")
    assert msr["metrics"]["msr_black"]["better"] == "lower" and "protected" in msr["needs"]


def _info(name: str):
    from veilbench.plugins import PluginInfo

    return PluginInfo(name, "(in-process)", "-", False)
