"""Run profiles: what the quick profile changes for a protector is declared by the protector.

The no-dataset fallback applies the quick profile; a protector without the settings another
protector's quick profile shortens (``none``, the example plugin's) must run unchanged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from veilbench.config import RunConfig
from veilbench.plugins import reset_plugins
from veilbench.protectors.contract import declared_profiles
from veilbench.protectors.veil import VeilConfig
from veilbench.testing import TINY_MODEL, invoke, use_plugins
from veilbench.weights import cache_dir

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "example"


def test_quick_profile_sets_only_what_the_protector_declares():
    veil = declared_profiles({"config": "veilbench.protectors.veil:VeilConfig"})
    assert veil == {"quick": {"iterations": 30}} == VeilConfig.profiles
    assert declared_profiles({}) == {}  # e.g. `none`: no config, nothing to shorten
    plain = RunConfig()
    assert plain.apply_profile(True, {}) == "quick"
    assert plain.protector_params == {}
    config = RunConfig()
    config.apply_profile(True, veil)
    assert config.protector_params == {"iterations": 30}
    given = RunConfig(
        protector_params={"iterations": 3}, explicit=frozenset({"protector.iterations"})
    )
    given.apply_profile(True, veil)
    assert given.protector_params == {"iterations": 3}
    full = RunConfig(profile="full")
    assert full.apply_profile(True, veil) is None and full.protector_params == {}


@pytest.fixture
def no_dataset(monkeypatch, tmp_path):
    """No dataset given and none reachable: the synthetic fallback with the quick profile."""
    from veilbench.data import datasets

    def no_lfw(*args, **kwargs):
        raise datasets.DataError("no LFW here")

    monkeypatch.setattr(datasets, "_find_lfw", no_lfw)
    monkeypatch.delenv("VEILBENCH_DATA", raising=False)
    # A private cache, but the weight files already fetched stay in reach.
    monkeypatch.setenv(
        "VEILBENCH_WEIGHTS", os.environ.get("VEILBENCH_WEIGHTS", str(cache_dir() / "weights"))
    )
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VEILBENCH_PROGRESS", "0")
    monkeypatch.chdir(tmp_path)
    yield
    reset_plugins()


def _ran(out: Path, result) -> dict:
    import json

    assert result.exit_code == 0, result.output
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["profile_applied"] == "quick"
    return config


def test_none_protector_with_sface_runs_on_the_fallback(no_dataset, tmp_path):
    use_plugins()
    out = tmp_path / "none"
    config = _ran(out, invoke("run", "--protector", "none", "--models", "sface", "--out", str(out)))
    assert config["protector_params"] == {}


@pytest.mark.parametrize("protector", ["example_grey", "example_blur"])
def test_example_plugin_protectors_run_on_the_fallback(
    no_dataset, tmp_path, monkeypatch, protector
):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    for name in [m for m in sys.modules if m.startswith("veilbench_example")]:
        monkeypatch.delitem(sys.modules, name)
    import veilbench_example

    use_plugins(example=veilbench_example)
    out = tmp_path / protector
    args = ["run", "--protector", protector, "--models", TINY_MODEL, "--adversaries", "", "--quiet"]
    config = _ran(out, invoke(*args, "--out", str(out)))
    assert "iterations" not in config["protector_params"]
