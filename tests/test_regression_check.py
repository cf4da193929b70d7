"""`veilbench compare` on real runs: an identical rerun passes, a degraded veil fails."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from veilbench.commands import build_cli

pytestmark = pytest.mark.slow


def run(lfw_dev, out, iterations):
    args = [
        "run",
        "--protector",
        "veil",
        "--models",
        "sface",
        "--dataset",
        str(lfw_dev),
        "--identities",
        "2",
        "--max-distractors",
        "100",
        "--device",
        "cpu",
        "--quiet",
        "--param",
        f"iterations={iterations}",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    return out / "results.json"


def test_identical_rerun_passes_and_degraded_veil_fails(lfw_dev, tmp_path):
    base = run(lfw_dev, tmp_path / "base", 20)
    again = run(lfw_dev, tmp_path / "again", 20)
    degraded = run(lfw_dev, tmp_path / "degraded", 1)
    cli = build_cli()
    same = CliRunner().invoke(cli, ["compare", str(base), str(again)])
    assert same.exit_code == 0, same.output
    worse = CliRunner().invoke(cli, ["compare", str(base), str(degraded)])
    assert worse.exit_code == 1, worse.output
    assert "REGRESSION" in worse.output
