"""Intervals and paired tests against known answers (textbook values, and scipy where present)."""

from __future__ import annotations

import numpy as np
import pytest

from veilbench import stats


def test_wilson_textbook_values():
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score).
    w = stats.wilson(81, 263)
    assert (round(w.low, 4), round(w.high, 4)) == (0.2553, 0.3662)
    w = stats.wilson(15, 148)
    assert (round(w.low, 4), round(w.high, 4)) == (0.0624, 0.1605)
    w = stats.wilson(0, 20)
    assert w.low == 0.0 and round(w.high, 4) == 0.1611


def test_wilson_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 6), (4, 6), (6, 6), (30, 600), (599, 600)]:
        ours = stats.wilson(k, n)
        ref = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert ours.low == pytest.approx(ref.low, abs=1e-9)
        assert ours.high == pytest.approx(ref.high, abs=1e-9)


def test_identity_bootstrap_is_seeded_and_resamples_people():
    ids = [f"p{i}" for i in range(30) for _ in range(5)]
    y = np.array([i % 3 == 0 for i in range(30) for _ in range(5)])  # whole people succeed
    a = stats.identity_bootstrap(y, ids, seed=1)
    assert a == stats.identity_bootstrap(y, ids, seed=1)
    assert a.low < y.mean() < a.high
    # Resampling photos would pretend 150 independent draws; resampling people gives 30, wider.
    photo = stats.identity_bootstrap(y, [str(i) for i in range(len(y))], seed=1)
    assert a.width > 1.5 * photo.width


def test_rate_interval_rule():
    few = stats.rate_interval([1, 1, 0, 1, 0, 1], ["a", "a", "b", "b", "c", "c"])
    assert few.method == "wilson-identity"
    # Wilson at the pooled rate 4/6 with n = 3 people, not 6 photos.
    ref = stats.wilson(4 / 6 * 3, 3)
    assert (few.low, few.high) == (ref.low, ref.high)
    ids = [f"p{i}" for i in range(25) for _ in range(4)]
    many = stats.rate_interval([i % 2 for i in range(100)], ids)
    assert many.method == "bootstrap-identity"
    # A rate of exactly 1 never collapses to a point.
    perfect = stats.rate_interval([1] * 100, ids)
    assert perfect.method == "wilson-identity" and perfect.low < 1.0 == perfect.high


def test_mcnemar_exact_matches_binomial():
    scipy_stats = pytest.importorskip("scipy.stats")
    before = np.array([1] * 10 + [0] * 5 + [1] * 20 + [0] * 2, bool)
    after = np.array([0] * 10 + [1] * 5 + [1] * 20 + [0] * 2, bool)
    t = stats.mcnemar_exact(before, after)
    assert (t.lost, t.gained) == (10, 5)
    assert t.p_value == pytest.approx(scipy_stats.binomtest(5, 15, 0.5).pvalue, rel=1e-12)
    assert stats.mcnemar_exact(before, before).p_value == 1.0


def test_paired_bootstrap_known_cases():
    ids = [f"p{i}" for i in range(40) for _ in range(3)]
    same = np.ones(120, bool)
    assert stats.paired_bootstrap(same, same, ids).p_value == 1.0
    dropped = same.copy()
    dropped[:60] = False  # half the people lose every photo
    t = stats.paired_bootstrap(same, dropped, ids, seed=0)
    assert t.difference == pytest.approx(-0.5) and t.p_value < 0.01
    assert t.low < -0.3 and t.high < 0
    assert stats.paired_test(same, dropped, ids).method == "bootstrap-identity"
    assert stats.paired_test(same[:6], dropped[:6], ids[:6]).method == "mcnemar-exact"


def test_holm_textbook():
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # monotone step-down
    assert stats.holm([]) == []


def _people(n_people, photos):
    return [f"p{i}" for i in range(n_people) for _ in range(photos)]


def test_compare_ignores_a_change_inside_the_noise():
    ids = _people(40, 5)
    before = np.array([i % 2 == 0 for i in range(200)])
    after = before.copy()
    after[[0, 2, 4, 6, 8, 10, 12, 14]] = False  # 8 photos lost ...
    after[[1, 3, 5]] = True  # ... 3 gained: -0.025, beyond a 0.02 tolerance
    v = stats.judge_change(before, after, ids, tolerance=0.02)
    assert v.beyond_tolerance and v.worse and not v.significant and not v.flagged
    assert "within the noise" in v.reason


def test_compare_flags_a_significant_change_after_holm():
    ids = _people(30, 4)
    before = np.ones(120, bool)
    after = before.copy()
    after[:48] = False  # 12 of 30 people lose every photo
    steady = stats.MetricOutcomes("steady", before, before, ids, 0.02)
    dropped = stats.MetricOutcomes("dropped", before, after, ids, 0.02)
    verdicts = stats.judge_changes([steady, dropped])
    assert [v.flagged for v in verdicts] == [False, True]
    assert verdicts[1].test.method == "bootstrap-identity"
    assert verdicts[1].adjusted_p >= verdicts[1].test.p_value  # corrected for two metrics


def test_compare_flags_a_large_drop_on_a_tiny_sample_with_the_reason():
    ids = _people(2, 3)  # the CI baseline's size: two people
    before = np.ones(6, bool)
    after = np.array([1, 1, 1, 0, 0, 0], bool)  # white-box MSR 1.0 -> 0.5
    v = stats.judge_change(before, after, ids, tolerance=0.05)
    assert v.flagged and v.test is None and "too few to test" in v.reason
    up = stats.judge_change(after, before, ids, tolerance=0.05)
    assert not up.flagged and "improvement" in up.reason
    # Lower is better (e.g. black-box MSR): a rise is the drop in quality.
    worse = stats.judge_change(after, before, ids, tolerance=0.05, higher_is_better=False)
    assert worse.flagged
