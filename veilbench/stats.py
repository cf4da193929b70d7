"""Intervals and tests for rates measured on photos of people (numpy only, no torch).

Photos of one person are not independent: a protection that fails for someone tends to fail on
all of that person's photos. Every interval and paired test here therefore treats the
**identity** as the unit that is resampled, never the photo.

- :func:`wilson`: Wilson's score interval for a binomial proportion (successes may be
  fractional, for an effective sample size).
- :func:`identity_bootstrap`: percentile interval of a pooled rate, resampling identities.
- :func:`rate_interval`: the rule that picks between them (see its docstring).
- :func:`mcnemar_exact`, :func:`paired_bootstrap`: does a per-photo outcome change between two
  runs on the same photos?
- :func:`holm`: Holm's step-down adjustment when several metrics are tested at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: With at least this many identities (and a rate strictly between 0 and 1) a rate's interval
#: is the identity bootstrap; with fewer, percentile bootstraps under-cover, so Wilson over
#: identities is used instead.
MIN_BOOTSTRAP_IDENTITIES = 20
#: Bootstrap resamples: enough for stable 2.5 / 97.5 percentiles of a rate (to ~0.005).
RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A two-sided interval for a rate, and what it rests on."""

    low: float
    high: float
    #: "bootstrap-identity" or "wilson-identity" (or "wilson" when counts were given directly).
    method: str
    level: float = CONFIDENCE

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_dict(self) -> dict:
        return asdict(self)


def _z(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (erfinv by bisection: numpy has none)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    target = 1.0 - (1.0 - confidence) / 2.0
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def wilson(successes: float, n: float, confidence: float = CONFIDENCE) -> Interval:
    """Wilson's score interval (no continuity correction) for ``successes`` out of ``n``."""
    if n <= 0:
        return Interval(0.0, 1.0, "wilson", confidence)
    if not 0 <= successes <= n:
        raise ValueError(f"successes ({successes}) must lie in [0, n = {n}]")
    z = _z(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    return Interval(max(0.0, centre - half), min(1.0, centre + half), "wilson", confidence)


def _by_identity(
    outcomes: Sequence[bool] | np.ndarray, identities: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-identity (successes, photos), identities in first-seen order."""
    y = np.asarray(outcomes, dtype=float)
    if y.ndim != 1 or len(y) != len(identities):
        raise ValueError(f"{len(y)} outcomes but {len(identities)} identities")
    _, inverse = np.unique(np.asarray(identities, dtype=object).astype(str), return_inverse=True)
    k = np.bincount(inverse, weights=y)
    n = np.bincount(inverse).astype(float)
    return k, n


def _identity_weights(groups: int, resamples: int, seed: int) -> np.ndarray:
    """How often each identity is drawn in each resample (resamples x groups)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(groups, np.full(groups, 1.0 / groups), size=resamples).astype(float)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def identity_bootstrap(
    outcomes: Sequence[bool] | np.ndarray,
    identities: Sequence[str],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Percentile interval of the pooled rate, resampling whole identities with replacement.

    Each resample draws as many identities as there are, with replacement, and takes the rate
    over all their photos (the same pooled rate the point estimate is).
    """
    k, n = _by_identity(outcomes, identities)
    if len(n) == 0:
        return Interval(0.0, 1.0, "bootstrap-identity", confidence)
    w = _identity_weights(len(n), resamples, seed)
    lo, hi = _percentiles((w @ k) / (w @ n), confidence)
    return Interval(lo, hi, "bootstrap-identity", confidence)


def rate_interval(
    outcomes: Sequence[bool] | np.ndarray,
    identities: Sequence[str],
    *,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    min_identities: int = MIN_BOOTSTRAP_IDENTITIES,
) -> Interval:
    """The interval of a pooled per-photo rate, respecting that one person's photos correlate.

    The rule:

    - **at least ``min_identities`` (20) identities and a rate strictly between 0 and 1**: the
      identity-level percentile bootstrap (:func:`identity_bootstrap`, ``seed``-fixed);
    - **otherwise**: Wilson's interval at the pooled rate with the *number of identities* as the
      sample size, i.e. as if each person's photos were one observation. That is the most
      conservative design effect (photos of a person perfectly correlated); it is used where a
      bootstrap over a handful of people would under-cover, and where the rate is 0 or 1 (a
      bootstrap then collapses to a point).

    Assumptions: identities are independent of each other; within a person, photos may be
    correlated in any way.
    """
    y = np.asarray(outcomes, dtype=float)
    k, n = _by_identity(y, identities)
    photos, people = int(n.sum()), len(n)
    rate = float(k.sum() / photos) if photos else float("nan")
    if people >= min_identities and 0.0 < rate < 1.0:
        return identity_bootstrap(y, identities, seed=seed, confidence=confidence)
    if people == 0:
        return Interval(0.0, 1.0, "wilson-identity", confidence)
    w = wilson(rate * people, people, confidence)
    return Interval(w.low, w.high, "wilson-identity", confidence)


# Paired tests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of two runs' per-photo outcomes on the same photos."""

    #: Rate after minus rate before.
    difference: float
    #: Two-sided p-value for "no change".
    p_value: float
    #: "mcnemar-exact" or "bootstrap-identity".
    method: str
    #: Photos that went from success to failure, and from failure to success.
    lost: int
    gained: int
    #: Interval of ``difference`` (bootstrap only).
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _paired(before, after) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(before, dtype=bool)
    b = np.asarray(after, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired outcomes need two vectors of one length, got {a.shape} and {b.shape}"
        )
    return a, b


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` out of ``n`` under p = 1/2 (symmetric, so 2 x tail)."""
    if n == 0:
        return 1.0
    m = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(m + 1))
    # Integers until the last step: exact for any n a run can have.
    return min(1.0, 2 * tail / 2**n)


def mcnemar_exact(before, after) -> PairedTest:
    """McNemar's exact test: only photos whose outcome changed carry information.

    Assumes photos are independent; with several photos per person prefer
    :func:`paired_bootstrap` when there are enough people (see :func:`paired_test`).
    """
    a, b = _paired(before, after)
    lost = int((a & ~b).sum())
    gained = int((~a & b).sum())
    diff = float(b.mean() - a.mean()) if len(a) else 0.0
    return PairedTest(diff, binomial_two_sided(lost, lost + gained), "mcnemar-exact", lost, gained)


def paired_bootstrap(
    before,
    after,
    identities: Sequence[str] | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> PairedTest:
    """Bootstrap of the paired difference in rates, resampling identities (or photos).

    The p-value is the share of resampled differences, centred on the observed one, at least as
    far from zero as the observed difference (the usual two-sided bootstrap test).
    """
    a, b = _paired(before, after)
    ids = identities if identities is not None else [str(i) for i in range(len(a))]
    d = b.astype(float) - a.astype(float)
    k, n = _by_identity(d, ids)
    lost = int((a & ~b).sum())
    gained = int((~a & b).sum())
    if len(n) == 0:
        return PairedTest(0.0, 1.0, "bootstrap-identity", 0, 0, 0.0, 0.0)
    observed = float(k.sum() / n.sum())
    w = _identity_weights(len(n), resamples, seed)
    diffs = (w @ k) / (w @ n)
    lo, hi = _percentiles(diffs, confidence)
    extreme = np.abs(diffs - observed) >= abs(observed) - 1e-12
    p = float((extreme.sum() + 1) / (resamples + 1)) if observed else 1.0
    return PairedTest(observed, min(1.0, p), "bootstrap-identity", lost, gained, lo, hi)


def paired_test(
    before,
    after,
    identities: Sequence[str] | None = None,
    *,
    seed: int = 0,
    min_identities: int = MIN_BOOTSTRAP_IDENTITIES,
) -> PairedTest:
    """The identity bootstrap with enough identities, McNemar's exact test otherwise."""
    people = len(set(identities)) if identities is not None else len(np.asarray(before))
    if people >= min_identities:
        return paired_bootstrap(before, after, identities, seed=seed)
    return mcnemar_exact(before, after)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (compare each with alpha; controls the FWER)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


# Telling change from noise between two runs ---------------------------------------------------

#: Below this many people a paired test cannot respect that one person's photos correlate:
#: a change beyond the tolerance is then judged on the tolerance alone (drops are flagged).
MIN_TEST_IDENTITIES = 5
ALPHA = 0.05


@dataclass(frozen=True)
class MetricOutcomes:
    """One rate of two runs on the same photos: per-photo outcomes, in the same photo order."""

    name: str
    before: Sequence[bool]
    after: Sequence[bool]
    identities: Sequence[str]
    #: How far the rate may move before it counts as a change.
    tolerance: float
    #: False for rates where lower is better (e.g. MSR: the share still recognised).
    higher_is_better: bool = True


@dataclass(frozen=True)
class ChangeVerdict:
    """Whether one metric changed: beyond the tolerance *and* significant (Holm-adjusted)."""

    name: str
    before: float
    after: float
    difference: float
    beyond_tolerance: bool
    #: A move in the bad direction (whether or not it is flagged).
    worse: bool
    #: The paired test (None when the sample is too small to test).
    test: PairedTest | None
    adjusted_p: float | None
    significant: bool
    flagged: bool
    reason: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["test"] = self.test.to_dict() if self.test else None
        return d


def _testable(metric: MetricOutcomes, alpha: float) -> str:
    """Why the sample is too small for a paired test, or "" when it is not."""
    people = len(set(metric.identities))
    if people < MIN_TEST_IDENTITIES:
        return f"{people} people: too few to test (needs {MIN_TEST_IDENTITIES})"
    photos = len(metric.before)
    if binomial_two_sided(0, photos) > alpha:  # even every photo changing could not show it
        return f"{photos} photos: too few to test at alpha {alpha:g}"
    return ""


def judge_changes(
    metrics: Sequence[MetricOutcomes], *, alpha: float = ALPHA, seed: int = 0
) -> list[ChangeVerdict]:
    """Each metric's verdict; Holm's correction runs over the metrics that could be tested.

    A change is flagged when it is beyond the tolerance and its Holm-adjusted paired p-value
    (:func:`paired_test`) is at most ``alpha``. Where the sample is too small to test, a move
    beyond the tolerance in the bad direction is flagged all the same, with that reason; a move
    the good way is then reported but not flagged.
    """
    tests, too_small = {}, {}
    for m in metrics:
        _paired(m.before, m.after)
        if len(m.identities) != len(m.before):
            raise ValueError(f"{m.name}: {len(m.before)} photos but {len(m.identities)} identities")
        why = _testable(m, alpha)
        if why:
            too_small[m.name] = why
        else:
            tests[m.name] = paired_test(m.before, m.after, m.identities, seed=seed)
    adjusted = dict(zip(tests, holm([t.p_value for t in tests.values()]), strict=True))
    verdicts = []
    for m in metrics:
        before = float(np.mean(m.before)) if len(m.before) else float("nan")
        after = float(np.mean(m.after)) if len(m.after) else float("nan")
        diff = after - before
        beyond = abs(diff) > m.tolerance + 1e-12
        worse = diff < 0 if m.higher_is_better else diff > 0
        test, p_adj = tests.get(m.name), adjusted.get(m.name)
        significant = p_adj is not None and p_adj <= alpha
        if not beyond:
            flagged, reason = False, f"within the tolerance {m.tolerance:g}"
        elif m.name in too_small:
            flagged = worse
            reason = f"{too_small[m.name]}; " + (
                "flagged on the tolerance alone" if worse else "not flagged: an improvement"
            )
        else:
            flagged = significant
            reason = (
                f"{'significant' if significant else 'within the noise'} "
                f"({test.method}, Holm-adjusted p = {p_adj:.3g}, alpha {alpha:g})"
            )
        verdicts.append(
            ChangeVerdict(
                m.name,
                before,
                after,
                diff,
                beyond,
                worse,
                test,
                p_adj,
                significant,
                flagged,
                reason,
            )
        )
    return verdicts


def judge_change(
    before: Sequence[bool],
    after: Sequence[bool],
    identities: Sequence[str],
    *,
    tolerance: float,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
    seed: int = 0,
) -> ChangeVerdict:
    """:func:`judge_changes` for one metric (no multiple-comparison correction)."""
    metric = MetricOutcomes("rate", before, after, identities, tolerance, higher_is_better)
    return judge_changes([metric], alpha=alpha, seed=seed)[0]
