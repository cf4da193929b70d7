"""Several protectors in one run: selection, namespaced parameters, sweeps, one document."""

from __future__ import annotations

import json

import pytest

from tests.test_runner import ARGS, run_cli
from veilbench.errors import ConfigError
from veilbench.plugins import get_plugins
from veilbench.protectors.variants import protector_variants
from veilbench.results import read_results, validate


def _protectors():
    return get_plugins().registries["protectors"]


def test_a_sweep_gives_one_named_variant_per_value():
    variants = protector_variants("pixelate,face_blur", {"pixelate.block": "4,8,16"}, _protectors())
    assert [v.name for v in variants] == [
        "pixelate[block=4]",
        "pixelate[block=8]",
        "pixelate[block=16]",
        "face_blur",
    ]
    assert [v.params for v in variants[:3]] == [{"block": 4}, {"block": 8}, {"block": 16}]
    assert all(v.create() for v in variants)  # each builds with its own settings


def test_one_protector_takes_plain_keys_and_several_need_their_name():
    (only,) = protector_variants("pixelate", {"block": 8}, _protectors())
    assert only.name == "pixelate" and only.params == {"block": 8}
    with pytest.raises(ConfigError, match="name the protector, e.g. --param pixelate.block"):
        protector_variants("pixelate,face_blur", {"block": 8}, _protectors())
    with pytest.raises(ConfigError, match="names no protector"):
        protector_variants("pixelate", {"pixelat.block": 4}, _protectors())
    # A config file may hold settings of protectors another run crafts.
    (kept,) = protector_variants("pixelate", {"mask.opacity": 0.5}, _protectors())
    assert kept.params == {}


def test_the_quick_profile_adds_each_protectors_own_settings_unless_given():
    variants = protector_variants(
        "veil,none,pgd",
        {"pgd.iterations": 3},
        _protectors(),
        profile="quick",
        explicit=frozenset({"protector.pgd.iterations"}),
    )
    params = {v.name: v.params for v in variants}
    assert params["veil"].get("iterations") == 30 and params["none"] == {}
    assert params["pgd"]["iterations"] == 3  # given: the profile keeps it


def test_all_leaves_out_demonstrations_unless_named(tiny_plugins):
    names = {v.name for v in protector_variants("all", {}, _protectors())}
    assert {"veil", "vuap", "none", "pixelate", "pgd"} <= names
    demos = {e.name for e in _protectors() if "(example)" in e.metadata.get("description", "")}
    assert demos and not names & demos
    (named,) = protector_variants(sorted(demos)[0], {}, _protectors())
    assert named.name in demos


def test_several_protectors_in_one_run_write_one_document(tiny_plugins, tmp_path):
    out = tmp_path / "zoo"
    args = ["--protector", "none,pixelate", "--param", "pixelate.block=4,8", "--adversaries", ""]
    run_cli([*ARGS, *args, "--out", str(out)])
    raw = json.loads((out / "results.json").read_text())
    validate(raw)
    doc = read_results(out / "results.json")
    assert list(doc.results.protectors) == ["none", "pixelate[block=4]", "pixelate[block=8]"]
    assert doc.results.protectors["pixelate[block=8]"].config["block"] == 8
    keys = [w.key for w in doc.results.sets()]
    assert "pixelate[block=4]:tiny_random_a" in keys and len(keys) == 6
    # One gallery for all: the clean embeddings were computed once.
    assert "clean" in doc.results.measurements
    assert "pixelate[block=4]:tiny_random_a" in (out / "report.html").read_text()


def test_each_protector_meets_the_adversaries_its_threats_name(tiny_plugins, tmp_path):
    """The veil's algebra is run on the veil, the parrot on the blur; the others are listed as
    not run, with the reason, in the record and the report."""
    out = tmp_path / "threats"
    args = ["--protector", "veil,face_blur", "--param", "veil.iterations=2"]
    run_cli([*ARGS, *args, "--adversaries", "average,parrot", "--out", str(out)])
    doc = read_results(out / "results.json")
    veil = doc.results.protectors["veil"].surrogates["tiny_random_a"].measurements["adversaries"]
    blur = (
        doc.results.protectors["face_blur"].surrogates["tiny_random_a"].measurements["adversaries"]
    )
    assert {a.adversary for a in veil.results} == {"average"} and "parrot" in veil.skipped
    assert {a.adversary for a in blur.results} == {"parrot"} and "average" in blur.skipped
    assert all(c.rank1.photos > 0 for a in blur.results for c in a.reid.values())
    assert 'id="adversaries-not-run"' in (out / "report.html").read_text()


def test_pool_protectors_get_a_pool_of_people_outside_the_split(tiny_plugins, tmp_path):
    """k-same and the targeted cloaks draw on a public pool: with no folder named, the run
    reserves one from its dataset's people who have no photo in the split."""
    out = tmp_path / "pool"
    args = ["--protector", "ksame,tipim", "--param", "tipim.iterations=1", "--adversaries", ""]
    run_cli([*ARGS, *args, "--out", str(out)])
    doc = read_results(out / "results.json")
    assert not [p for p in doc.problems if p.get("stage") in ("craft", "protect")], doc.problems
    for name in ("ksame", "tipim"):
        sets = doc.results.protectors[name].surrogates
        assert set(sets) == {"tiny_random_a", "tiny_random_b"}, name
        assert all("msr" in s.measurements for s in sets.values()), name
