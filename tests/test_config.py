from __future__ import annotations

import pytest

from veilbench.config import build_config, load_config, parse_params
from veilbench.errors import ConfigError


def test_flags_override_file_and_defaults(tmp_path):
    cfg = tmp_path / "veilbench.toml"
    cfg.write_text(
        '[run]\nmodels = "sface"\nseed = 3\n[protocol]\nn_craft = 8\n'
        "[protector]\niterations = 7\n[attacks.sweeps]\ngaussian = [0, 120]\n"
    )
    values = load_config(cfg)
    config = build_config(values, {"seed": 5, "protector": None})
    assert config.models == "sface" and config.seed == 5 and config.protector == "veil"
    assert config.protocol.n_craft == 8 and config.protocol.seed == 5
    assert config.protector_params == {"iterations": 7}
    assert config.attack_sweeps == {"gaussian": [0.0, 120.0]}
    assert config.to_dict()["protocol"]["n_craft"] == 8


def test_unknown_keys_are_errors(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[run]\nmodel = 'x'\n")
    with pytest.raises(ConfigError, match="unknown \\[run\\] key 'model'"):
        load_config(cfg)
    cfg.write_text("[runn]\n")
    with pytest.raises(ConfigError, match="unknown sections"):
        load_config(cfg)


def test_broken_toml_is_a_config_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[run\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(cfg)


def test_parse_params_types():
    assert parse_params(("a=1", "b=0.5", "c=true", "d=hull", 'e="x"')) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "hull",
        "e": "x",
    }
    with pytest.raises(ConfigError):
        parse_params(("novalue",))


def test_shipped_dataset_configs_load():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "datasets").glob("*.toml")):
        config = build_config(load_config(path), {})
        assert config.protocol.n_craft >= 1, path


def test_run_identities_alias(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[run]\nidentities = 7\nmax_distractors = 100\n")
    config = build_config(load_config(cfg), {})
    assert config.protocol.identities == 7 and config.protocol.max_distractors == 100


def test_alignment_is_checked_before_any_work(tmp_path):
    assert build_config({"alignment": "mtcnn"}, {}).alignment == "mtcnn"
    assert build_config({}, {}).alignment is None  # the dataset's own
    with pytest.raises(ConfigError, match="yunet, mtcnn, center, none"):
        build_config({"alignment": "dlib"}, {})
