"""End-to-end plumbing of `veilbench run` with RANDOM-WEIGHT tiny models on synthetic faces.

These check the pipeline's structure, resumability and caching, not protection quality (the
real-model, real-face checks live in test_protectors.py and test_real_run.py).
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from veilbench.cli import build_cli


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
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema_version"] == 1 and doc["dataset"]["synthetic"]
    assert any("synthetic" in w for w in doc["warnings"])
    assert doc["config"]["protector_config"]["iterations"] == 2
    assert doc["config"]["seed"] == 0 and doc["environment"]["torch"]
    msr = doc["results"]["msr"]
    assert set(msr) == {"tiny_random_a", "tiny_random_b"}
    for row in msr.values():
        assert set(row) == {"tiny_random_a", "tiny_random_b"}
        for subset in ("craft", "held_out"):
            assert 0.0 <= row["tiny_random_a"][subset]["msr"] <= 1.0
    curves = doc["results"]["robustness"]["tiny_random_a"]["gaussian"]
    assert len(curves["protected"]["tiny_random_b"]) == len(curves["strengths"])
    assert (out / "report.html").read_text().count("msr-held_out") >= 1
    assert doc["results"]["samples"]["tiny_random_a"]  # thumbnails on by default
    assert len(doc["split"]["probes"]) == 2

    veils = sorted((out / "veils").rglob("*.veil"))
    assert len(veils) == 4  # 2 surrogates x 2 identities
    assert all(os.stat(v).st_mode & 0o077 == 0 for v in veils)  # veils are secrets
    mtimes = [v.stat().st_mtime_ns for v in veils]
    run_cli([*ARGS, *VEIL, "--out", str(out)])
    assert [v.stat().st_mtime_ns for v in veils] == mtimes  # resumed, not crafted again
    again = json.loads((out / "results.json").read_text())
    assert again["timings"]["gallery_embeddings_computed"] == {
        "tiny_random_a": 0,
        "tiny_random_b": 0,
    }
    assert again["results"]["msr"] == doc["results"]["msr"]  # deterministic


def test_none_protector_is_a_perfect_clean_baseline(tiny_plugins, tmp_path):
    out = tmp_path / "none"
    run_cli([*ARGS, "--protector", "none", "--out", str(out)])
    doc = json.loads((out / "results.json").read_text())
    for row in doc["results"]["msr"].values():
        for cell in row.values():
            assert cell["held_out"]["msr"] == 1.0
    assert doc["results"]["image_metrics"]["tiny_random_a"]["protected"]["ssim"] == pytest.approx(
        1.0
    )


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
    doc = json.loads((out / "results.json").read_text())
    assert doc["results"]["robustness"]["tiny_random_a"]["posterize"]["strengths"] == [
        8,
        5,
        3,
        2,
        1,
    ]
    assert doc["results"]["image_metrics"]["tiny_random_a"]["protected"]["ssim"] < 0.9


def test_samples_off_keeps_photos_out_of_results_and_report(tiny_plugins, tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "veilbench.toml"
    config.write_text("[run]\nsamples = false\n")
    run_cli([*ARGS, *VEIL, "--config", str(config), "--out", str(out)])
    text = (out / "results.json").read_text()
    assert json.loads(text)["results"]["samples"] == {}
    assert "data:image/png" not in text
    assert "No sample images in this document." in (out / "report.html").read_text()
