"""``veilbench run`` rejects bad names and parameters before any heavy work, with the fix."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import veilbench.runner
from veilbench.commands import build_cli


@pytest.fixture
def run_cli(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the runner started although validation should have failed")

    monkeypatch.setattr(veilbench.runner, "run", never)

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(build_cli(), ["run", "--dataset", "synthetic", *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        return result.output.strip()

    return invoke


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--attacks", "gausian"],
            "Error: unknown attack 'gausian'; did you mean gaussian? "
            "(see `veilbench list attacks`)",
        ),
        (
            ["--attacks", "pixelat"],
            "Error: unknown attack 'pixelat' (see `veilbench list attacks`)",
        ),
        (
            ["--models", "sfce"],
            "Error: unknown model 'sfce'; did you mean sface, facenet? "
            "(see `veilbench list models`)",
        ),
        (
            ["--protector", "vail"],
            "Error: unknown protector 'vail'; did you mean veil, vuap, avih? "
            "(see `veilbench list protectors`)",
        ),
        (
            ["--models", "sface", "--craft-with", "facent"],
            "Error: unknown model 'facent'; did you mean facenet, sface, mobilefacenet? "
            "(see `veilbench list models`)",
        ),
        (
            ["--models", "sface", "--surrogates", "sface,facenet"],
            "Error: --surrogates names 'facenet', which --models does not select (sface)",
        ),
        (
            ["--models", "sface", "--checkpoint", "iresnet5=/x.pth"],
            "Error: unknown model 'iresnet5'; did you mean iresnet50, iresnet34, iresnet18? "
            "(see `veilbench list models`)",
        ),
        (
            ["--dataset", "synthetc"],
            "Error: unknown dataset 'synthetc'; did you mean synthetic? "
            "(see `veilbench list datasets`); nor is it an existing path",
        ),
        (
            ["--protector", "none", "--param", "alpha=0.5"],
            "Error: unknown parameter(s) alpha for NoneConfig (valid keys: none)",
        ),
    ],
)
def test_bad_names_fail_before_the_run_starts(run_cli, args, message):
    assert run_cli("--models", "sface", *args) == message


def test_bad_param_key_and_type_use_the_config_dataclass(run_cli):
    assert run_cli("--param", "mu_vr=3").startswith(
        "Error: unknown parameter(s) mu_vr for VeilConfig; did you mean mu_var? (valid keys: alpha,"
    )
    assert run_cli("--param", "iterations=many") == (
        "Error: parameter iterations='many' is not a valid int"
    )
    assert run_cli("--param", "subspace=cube") == (
        "Error: subspace must be one of hull, span, centroid; got 'cube'"
    )
