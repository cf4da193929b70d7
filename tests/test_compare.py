"""``veilbench compare``: each metric judged in its own direction (privacy is not utility)."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from tests.documents import rate, records, results, surrogate_set
from veilbench.commands import build_cli
from veilbench.compare import compare, parse_tolerance
from veilbench.errors import ConfigError
from veilbench.measurements import registered
from veilbench.measurements.cost import CraftTiming
from veilbench.measurements.image_quality import ImageMetrics
from veilbench.measurements.msr import MsrCell
from veilbench.measurements.records import ImageQuality
from veilbench.results import ResultsDocument
from veilbench.results.upgrade import upgrade

MODELS = ("sface", "facenet", "dlib_resnet")


def three_models(white: float = 1.0, black: float = 0.1, ssim: float = 0.01) -> ResultsDocument:
    """A 3-model document built through the contract: every model crafts, every model tests."""

    def cell(value: float) -> dict[str, MsrCell]:
        return {s: MsrCell(rate(value), rate(value), rate(0.99), 20) for s in ("craft", "held_out")}

    return ResultsDocument(
        results=results(
            {
                s: surrogate_set(
                    s,
                    msr={t: cell(white if t == s else black) for t in MODELS},
                    image_quality=ImageMetrics(
                        protected=ImageQuality(ssim, 1.3, 7.0, 40),
                        recovered=ImageQuality(0.99, 0.01, 45.0, 20),
                    ),
                    impersonation={t: rate(0.5) for t in MODELS},
                    cost=CraftTiming(100.0, 20.0, 2.0, 5),
                )
                for s in MODELS
            },
            clean={t: {"craft": rate(0.99), "held_out": rate(0.99)} for t in MODELS},
        )
    )


def statuses(base: ResultsDocument, new: ResultsDocument, **tol) -> dict[str, str]:
    tolerance = parse_tolerance(",".join(f"{k}={v}" for k, v in tol.items()))
    return {r.metric: r.status for r in compare(base, new, tolerance).rows}


def test_black_box_msr_up_is_a_privacy_regression():
    rows = statuses(three_models(black=0.1), three_models(black=0.2))
    assert rows["msr/sface->facenet/held_out"] == "REGRESSION"  # attacker recognises more
    assert rows["msr/sface->sface/held_out"] == "ok"
    assert compare(three_models(black=0.1), three_models(black=0.2)).regressions


def test_black_box_msr_down_is_a_privacy_gain():
    result = compare(three_models(black=0.3), three_models(black=0.2))
    assert not result.regressions
    assert {r.metric for r in result.improvements} >= {"msr/facenet->dlib_resnet/held_out"}


def test_white_box_msr_down_is_a_utility_regression():
    rows = statuses(three_models(white=1.0), three_models(white=0.9))
    assert rows["msr/facenet->facenet/craft"] == "REGRESSION"
    assert rows["msr/facenet->sface/craft"] == "ok"


def test_tolerance_and_image_metric_directions():
    assert not compare(three_models(), three_models(white=0.99)).regressions  # within 0.02
    assert compare(three_models(ssim=0.01), three_models(ssim=0.05)).regressions  # more visible
    assert not compare(three_models(ssim=0.05), three_models(ssim=0.01)).regressions
    assert not compare(
        three_models(white=0.9), three_models(white=0.95), parse_tolerance("msr=0.1")
    ).regressions


def test_time_is_relative_and_loose():
    slow = copy.deepcopy(three_models())
    for s in MODELS:
        records(slow, s)["cost"].per_veil = 35.0  # 1.75x slower: within the default 1.0 (2x)
    assert not compare(three_models(), slow).regressions
    assert compare(three_models(), slow, parse_tolerance("time=0.5")).regressions


def test_missing_metric_counts_as_regression():
    new = three_models()
    del new.results.protectors["veil"].surrogates["dlib_resnet"]
    bad = compare(three_models(), new).regressions
    assert bad and {r.status for r in bad} == {"missing"}


def test_schema_1_documents_compare_after_upgrade():
    v3 = three_models().to_dict()
    sets = v3["results"]["protectors"]["veil"]["surrogates"]

    def bare(table: dict) -> dict:  # schema 1 wrote rates as bare numbers
        return {
            t: {
                s: {**c, **{k: c[k]["value"] for k in ("msr", "rank1_protected", "rank1_clean")}}
                for s, c in cells.items()
            }
            for t, cells in table.items()
        }

    v1 = {  # how schema 1 laid the same numbers out
        **v3,
        "schema_version": 1,
        "config": {"protector": "veil"},
        "results": {
            "clean": {
                t: {s: r["value"] for s, r in cells.items()}
                for t, cells in v3["results"]["measurements"]["clean"].items()
            },
            "msr": {k: bare(s["measurements"]["msr"]) for k, s in sets.items()},
            "image_metrics": {k: s["measurements"]["image_quality"] for k, s in sets.items()},
            "impersonation": {
                k: {t: r["value"] for t, r in s["measurements"]["impersonation"].items()}
                for k, s in sets.items()
            },
            "robustness": {},
            "samples": {},
            "per_identity": {},
            "privacy": {},
        },
        "timings": {"craft_s": {k: s["measurements"]["cost"] for k, s in sets.items()}},
    }
    upgraded = upgrade(v1, registered())
    again = upgraded["results"]["protectors"]["veil"]["surrogates"]["sface"]["measurements"]
    assert again["msr"]["facenet"]["held_out"]["msr"]["value"] == 0.1
    old = ResultsDocument.from_dict(v1)
    assert not compare(old, three_models()).regressions
    assert compare(old, three_models(black=0.3)).regressions


def test_a_plugin_family_has_no_tolerance_unless_given():
    """Families come from the registered measurements; one with no default is strict."""
    from veilbench.compare.tolerance import families

    known = families(registered().values())
    assert "msr" in known and "time" in known
    with pytest.raises(ConfigError, match="unknown tolerance"):
        parse_tolerance("made_up_family=1", known)
    assert parse_tolerance("made_up_family=1", [*known, "made_up_family"])["made_up_family"] == 1.0


def test_bad_tolerance():
    with pytest.raises(ConfigError, match="unknown tolerance"):
        parse_tolerance("foo=1")
    with pytest.raises(ConfigError):
        parse_tolerance("msr=-1")


def test_cli_exit_codes_table_and_markdown(tmp_path):
    base, same, leakier, private = (tmp_path / f"{n}.json" for n in "abcd")
    base.write_text(json.dumps(three_models().to_dict()))
    same.write_text(json.dumps(three_models().to_dict()))
    leakier.write_text(json.dumps(three_models(black=0.3).to_dict()))
    private.write_text(json.dumps(three_models(black=0.0).to_dict()))
    cli = build_cli()
    runner = CliRunner()
    assert runner.invoke(cli, ["compare", str(base), str(same)]).exit_code == 0
    gain = runner.invoke(cli, ["compare", str(base), str(private)])
    assert gain.exit_code == 0 and "better" in gain.output and "lower" in gain.output
    md = tmp_path / "summary.md"
    result = runner.invoke(cli, ["compare", str(base), str(leakier), "--markdown", str(md)])
    assert result.exit_code == 1 and "REGRESSION" in result.output
    # 6 black-box pairs x 2 subsets x (MSR, rank-1)
    assert "24 regression(s)" in md.read_text()


def _paired_doc(outcomes: dict[str, str]) -> ResultsDocument:
    """One white-box MSR cell whose rate carries per-photo outcomes (as the runner writes)."""
    from veilbench.measurements.records import rate_of

    hits = [c == "1" for o in outcomes.values() for c in o]
    people = [i for i, o in outcomes.items() for _ in o]
    r = rate_of(hits, people)
    cell = {s: MsrCell(r, r, rate(1.0), len(hits)) for s in ("craft", "held_out")}
    return ResultsDocument(results=results({"sface": surrogate_set("sface", msr={"sface": cell})}))


def _rows(base: ResultsDocument, new: ResultsDocument) -> list:
    return [r for r in compare(base, new).rows if r.metric.startswith("msr/")]


def test_a_change_inside_the_noise_is_not_flagged():
    """30 people x 10 photos; 4 photos flip from match to miss (-0.013, beyond a tolerance of
    0.01): McNemar / the identity bootstrap find no evidence of a change."""
    people = {f"p{i:02d}": "1111111111" for i in range(30)}
    worse = dict(people)
    for i in range(4):
        worse[f"p{i:02d}"] = "0111111111"
    rows = [
        r
        for r in compare(_paired_doc(people), _paired_doc(worse), {"msr": 0.01}).rows
        if r.metric.startswith("msr/")
    ]
    assert rows and all(r.status == "ok" for r in rows), [(r.status, r.note) for r in rows]
    assert all("within the noise" in r.note for r in rows)


def test_a_change_outside_the_noise_is_flagged():
    people = {f"p{i:02d}": "1111111111" for i in range(30)}
    worse = {i: ("0000000000" if n < 12 else o) for n, (i, o) in enumerate(people.items())}
    rows = _rows(_paired_doc(people), _paired_doc(worse))
    assert rows and all(r.status == "REGRESSION" for r in rows)
    assert all(r.note.startswith("significant") for r in rows)
    assert "significance" in compare(_paired_doc(people), _paired_doc(worse)).markdown()


def test_a_large_drop_on_a_tiny_sample_is_flagged_untested():
    """The CI baseline's two people: white-box MSR 1.0 -> 0.5 cannot be tested, yet must fail."""
    rows = _rows(_paired_doc({"a": "1111", "b": "1111"}), _paired_doc({"a": "1111", "b": "0000"}))
    assert rows and all(r.status == "REGRESSION" for r in rows)
    assert all("too few to test" in r.note for r in rows)


def test_rates_without_outcomes_fall_back_to_the_tolerance():
    rows = statuses(three_models(black=0.1), three_models(black=0.2))
    assert rows["msr/sface->facenet/held_out"] == "REGRESSION"
    notes = {
        r.metric: r.note for r in compare(three_models(black=0.1), three_models(black=0.2)).rows
    }
    assert notes["msr/sface->facenet/held_out"].startswith("not paired")
