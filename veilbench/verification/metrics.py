"""Verification metrics from pair similarities: ROC, AUC, EER, TAR at a fixed FAR, k-fold accuracy.

A pair is accepted when its similarity is at least the threshold. Scores are numpy arrays;
``genuine`` marks same-person pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: An FAR is reported only where the impostors can show it: at least this many of them would be
#: falsely accepted at that rate (below, the threshold is set by a handful of impostor pairs).
MIN_FALSE_ACCEPTS = 1


@dataclass
class Roc:
    """FAR (false accept rate) and TAR (true accept rate) at every distinct threshold."""

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    genuine: int
    impostors: int


def roc(scores: np.ndarray, genuine: np.ndarray) -> Roc:
    """The ROC, from accepting nothing (threshold +inf) to accepting everything."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(genuine, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # The last index of each run of equal scores: a threshold accepts all of a tie or none.
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, int)
    tp = np.cumsum(y)[ends]
    fp = np.cumsum(~y)[ends]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    far = np.r_[0.0, fp / max(1, n_neg)]
    tar = np.r_[0.0, tp / max(1, n_pos)]
    return Roc(far, tar, np.r_[np.inf, s[ends]], n_pos, n_neg)


def auc(curve: Roc) -> float:
    """Area under the ROC (trapezoids)."""
    return float(np.trapezoid(curve.tar, curve.far))


def eer(curve: Roc) -> float:
    """Equal error rate: where FAR equals 1 - TAR, linearly interpolated between ROC points."""
    frr = 1.0 - curve.tar
    gap = curve.far - frr  # rises from -1 to +1 along the curve
    i = int(np.searchsorted(gap, 0.0))
    if i == 0:
        return float(curve.far[0])
    if i >= len(gap):
        return float(curve.far[-1])
    g0, g1 = gap[i - 1], gap[i]
    t = 0.0 if g1 == g0 else -g0 / (g1 - g0)
    return float(curve.far[i - 1] + t * (curve.far[i] - curve.far[i - 1]))


@dataclass
class TarAtFar:
    """TAR at one FAR, or why it cannot be told from the impostors available."""

    far: float
    tar: float | None
    threshold: float | None
    #: Impostor pairs the FAR rests on, and how many of them are accepted at the threshold.
    impostors: int
    false_accepts: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def tar_at_far(curve: Roc, far: float) -> TarAtFar:
    """The highest TAR whose FAR is at most ``far`` (None where the impostors cannot tell)."""
    need = int(np.ceil(MIN_FALSE_ACCEPTS / far))
    if curve.impostors < need:
        note = (
            f"FAR {far:g} cannot be estimated from {curve.impostors:,} impostor pairs "
            f"(it needs at least {need:,}); use all-vs-all impostor pairs"
        )
        return TarAtFar(far, None, None, curve.impostors, 0, note)
    i = int(np.flatnonzero(curve.far <= far + 1e-15)[-1])
    fa = int(round(curve.far[i] * curve.impostors))
    note = (
        ""
        if curve.impostors * far >= 10
        else (
            f"rests on {curve.impostors:,} impostor pairs: at most "
            f"{int(curve.impostors * far)} may be accepted, so the threshold is rough"
        )
    )
    return TarAtFar(far, float(curve.tar[i]), float(curve.thresholds[i]), curve.impostors, fa, note)


def best_threshold(scores: np.ndarray, genuine: np.ndarray, balanced: bool) -> float:
    """The threshold maximising accuracy (or balanced accuracy) on these pairs."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(genuine, dtype=bool)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    cand = np.unique(s)
    # Candidates: each distinct score, and one above them all (accept nothing).
    cand = np.r_[cand, cand[-1] + 1.0] if len(cand) else np.array([0.0])
    tp = len(pos) - np.searchsorted(pos, cand, side="left")  # genuine scored >= threshold
    tn = np.searchsorted(neg, cand, side="left")  # impostors scored below it
    if balanced:
        value = tp / max(1, len(pos)) + tn / max(1, len(neg))
    else:
        value = (tp + tn).astype(float)
    return float(cand[int(np.argmax(value))])


def accuracies(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> tuple[float, float]:
    """(accuracy, balanced accuracy) at ``threshold``; balanced is NaN when a class is absent."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(genuine, dtype=bool)
    accept = s >= threshold
    acc = float((accept == y).mean()) if len(y) else float("nan")
    if y.all() or (~y).all():
        return acc, float("nan")
    return acc, float((accept[y].mean() + (~accept[~y]).mean()) / 2)


@dataclass
class FoldResult:
    """One fold of the k-fold protocol (thresholds chosen on the other folds)."""

    fold: int
    matched: int
    mismatched: int
    threshold: float
    accuracy: float
    balanced_threshold: float
    balanced_accuracy: float


def kfold(scores: np.ndarray, genuine: np.ndarray, folds: np.ndarray) -> list[FoldResult]:
    """Each fold's accuracy at the threshold best on all the other folds.

    ``accuracy`` uses the threshold that maximises accuracy on the other folds (the published
    protocol); ``balanced_accuracy`` (mean of TAR and 1 - FAR) uses the one that maximises it,
    so unbalanced folds (missing pairs) stay comparable with balanced published figures.
    With fewer than two folds there is nothing to choose a threshold on: no result.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(genuine, dtype=bool)
    f = np.asarray(folds)
    if len(np.unique(f)) < 2:  # no other fold to choose a threshold on
        return []
    out = []
    for k in np.unique(f):
        test, train = f == k, f != k
        t = best_threshold(s[train], y[train], balanced=False)
        tb = best_threshold(s[train], y[train], balanced=True)
        acc, _ = accuracies(s[test], y[test], t)
        _, bal = accuracies(s[test], y[test], tb)
        out.append(FoldResult(int(k), int(y[test].sum()), int((~y[test]).sum()), t, acc, tb, bal))
    return out
