from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from veilbench.cli import build_cli


@pytest.fixture(scope="module")
def cli():
    return build_cli()


@pytest.mark.parametrize("kind", ["models", "protectors", "attacks", "datasets"])
def test_list_json_parses_with_name_and_plugin(cli, kind):
    result = CliRunner().invoke(cli, ["list", kind, "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert entries and all({"name", "plugin"} <= set(e) for e in entries)


def test_list_models_carries_metadata(cli):
    models = {
        m["name"]: m
        for m in json.loads(CliRunner().invoke(cli, ["list", "models", "--json"]).output)
    }
    assert models["sface"]["weights"][0]["sha256"].startswith("0ba9fbfa")
    assert models["iresnet50"]["needs"] == "checkpoint"


def test_plugins_json(cli):
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    infos = json.loads(result.output)
    assert {"builtin-models", "builtin-protectors"} <= {i["name"] for i in infos}


def test_user_error_is_one_line_and_nonzero(cli):
    result = CliRunner().invoke(cli, ["run", "--models", "sfce", "--dataset", "synthetic"])
    assert result.exit_code == 2
    assert "did you mean sface" in result.output
    assert "Traceback" not in result.output


def test_unknown_protector_param_is_reported(cli):
    result = CliRunner().invoke(cli, ["run", "--protector", "none", "--param", "x"])
    assert result.exit_code == 2 and "key=value" in result.output


def test_weights_list_json(cli):
    rows = json.loads(CliRunner().invoke(cli, ["weights", "list", "--json"]).output)
    assert {r["name"] for r in rows} >= {
        "face_recognition_sface_2021dec.onnx",
        "lpips_alexnet.ckpt",
    }


def test_weights_fetch_unknown_name(cli):
    result = CliRunner().invoke(cli, ["weights", "fetch", "nope.bin"])
    assert result.exit_code == 2 and "unknown weight file" in result.output


def test_every_model_lists_a_card_without_loading_weights(cli):
    models = json.loads(CliRunner().invoke(cli, ["list", "models", "--json"]).output)
    for m in models:
        if m["name"] == "onnx":  # its card depends on the file given
            continue
        card = m["card"]
        assert card["embedding_size"] > 0 and card["input"]["size"] > 0, m["name"]
        assert len(card["input"]["crop"]) == 4
