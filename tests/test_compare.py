from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from veilbench.cli import build_cli
from veilbench.compare import compare, parse_tolerance
from veilbench.errors import ConfigError


def doc(msr=1.0, ssim=0.01, lpips=1.2):
    return {
        "schema_version": 1,
        "results": {
            "msr": {"sface": {"sface": {"held_out": {"msr": msr, "rank1_protected": msr}}}},
            "image_metrics": {
                "sface": {
                    "protected": {"ssim": ssim, "lpips": lpips},
                    "recovered": {"ssim": 0.99, "lpips": 0.01},
                }
            },
        },
    }


def test_within_tolerance_is_ok_and_worse_is_a_regression():
    tol = parse_tolerance("msr=0.02,ssim=0.01,lpips=0.02")
    assert not compare(doc(), doc(msr=0.99), tol).regressions
    bad = compare(doc(), doc(msr=0.9, ssim=0.05), tol).regressions
    assert {r.metric.split("/")[0] for r in bad} == {"msr", "rank1", "ssim"}
    assert not compare(doc(), doc(lpips=1.5), tol).regressions  # better is fine


def test_missing_metric_counts_as_regression():
    new = copy.deepcopy(doc())
    del new["results"]["image_metrics"]
    assert compare(doc(), new, parse_tolerance("")).regressions


def test_bad_tolerance():
    with pytest.raises(ConfigError):
        parse_tolerance("foo=1")


def test_cli_exit_codes_and_markdown(tmp_path):
    base, same, worse = (tmp_path / n for n in ("a.json", "b.json", "c.json"))
    base.write_text(json.dumps(doc()))
    same.write_text(json.dumps(doc()))
    worse.write_text(json.dumps(doc(msr=0.5)))
    cli = build_cli()
    assert CliRunner().invoke(cli, ["compare", str(base), str(same)]).exit_code == 0
    md = tmp_path / "summary.md"
    result = CliRunner().invoke(cli, ["compare", str(base), str(worse), "--markdown", str(md)])
    assert result.exit_code == 1 and "REGRESSION" in result.output
    assert "regression" in md.read_text()
