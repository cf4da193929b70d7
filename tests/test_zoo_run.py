"""The zoo's physics on real faces, through one run and its leaderboard (SFace crafts; dlib is
the attacker's model): what the leaderboard ranks must be what the run measured."""

from __future__ import annotations

import pytest

from tests.test_runner import run_cli
from veilbench.leaderboard import build_leaderboard
from veilbench.results import read_results


@pytest.fixture(scope="module")
def zoo(lfw_dev, tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    run_cli(
        [
            "run", "--protector", "none,pgd,veil",
            "--param", "pgd.iterations=2", "--param", "veil.iterations=3",
            "--param", "veil.until=fixed",
            "--models", "sface,dlib_resnet", "--craft-with", "sface",
            "--dataset", str(lfw_dev), "--identities", "2", "--max-distractors", "30",
            "--attacks", "jpeg", "--adversaries", "average",
            "--quiet", "--out", str(out),
        ]
    )  # fmt: skip
    doc = read_results(out / "results.json")
    return doc, {r.variant: r for r in build_leaderboard([doc]).groups[0].rows}


def _records(doc, protector):
    return doc.results.protectors[protector].surrogates["sface"].measurements


def test_none_has_the_clean_rank1(zoo):
    doc, _ = zoo
    clean = doc.results.measurements["clean"]
    msr = _records(doc, "none")["msr"]
    for target in ("sface", "dlib_resnet"):
        cell = msr[target]["held_out"]
        assert cell.msr.value == 1.0
        assert cell.rank1_protected.value == clean[target]["held_out"].value


def test_a_cloaks_black_box_rate_is_reported_per_target_and_under_jpeg(zoo):
    doc, rows = zoo
    assert set(rows["pgd"].attackers) == {"dlib_resnet"}  # sface crafted it: not an attacker
    jpeg = _records(doc, "pgd")["robustness"]["jpeg"]
    assert len(jpeg.protected["dlib_resnet"]) == len(jpeg.strengths) > 1
    assert rows["pgd"].worst.value >= rows["pgd"].attackers["dlib_resnet"].value


def test_the_veils_row_counts_its_adversary(zoo):
    doc, rows = zoo
    attacked = _records(doc, "veil")["adversaries"].results
    assert attacked and {a.adversary for a in attacked} == {"average"}
    best = max(a.reid["dlib_resnet"].rank1.value for a in attacked)
    assert rows["veil"].worst.value >= best
    assert best > rows["veil"].attackers["dlib_resnet"].value  # the attack beats doing nothing
