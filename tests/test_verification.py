"""Verification: pair lists, metrics against scikit-learn and known answers, and real LFW pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from veilbench.errors import DataError
from veilbench.verification import metrics as M
from veilbench.verification.pairs import find_pairs, parse_pairs, read_pairs

PAIRS = """2 2
Ann 1 2
Bob 1 3
Ann 1 Bob 2
Cy 1 Dee 4
Cy 1 2
Dee 2 3
Ann 2 Cy 2
Bob 1 Dee 1
"""


def test_parse_official_format():
    pairs = parse_pairs(PAIRS)
    assert len(pairs) == 8
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.genuine for p in pairs[:4]] == [True, True, False, False]
    assert pairs[2].a == ("Ann", 1) and pairs[2].b == ("Bob", 2)


@pytest.mark.parametrize(
    "text, message",
    [("", "empty"), ("ten 300\n", "first line"), ("1 1\nAnn 1 2\n", "but 1 pair lines follow")],
)
def test_malformed_pairs_one_clear_line(text, message):
    with pytest.raises(DataError, match=message):
        parse_pairs(text)
    with pytest.raises(DataError, match="neither"):
        parse_pairs("1 1\nAnn 1 2\nAnn x Bob 2\n")


def _synthetic(seed=0, n=4000):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    s = np.where(y, rng.normal(1.0, 1.0, n), rng.normal(-1.0, 1.0, n))
    return np.round(s, 2), y  # rounding makes ties, which a ROC must treat as one threshold


def test_roc_and_auc_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    s, y = _synthetic()
    curve = M.roc(s, y)
    fpr, tpr, thr = sk.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(curve.far, fpr)
    np.testing.assert_allclose(curve.tar, tpr)
    np.testing.assert_allclose(curve.thresholds[1:], thr[1:])
    assert M.auc(curve) == pytest.approx(sk.auc(fpr, tpr), abs=1e-12)
    assert M.auc(curve) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)


def test_known_answers():
    # Two unit-variance normals 2 apart: AUC = Phi(2 / sqrt 2), EER = Phi(-1).
    s, y = _synthetic(n=200_000)
    curve = M.roc(s, y)
    assert M.auc(curve) == pytest.approx(0.9214, abs=0.003)
    assert M.eer(curve) == pytest.approx(0.1587, abs=0.003)
    # TAR at FAR 1e-2: the impostors' 99th percentile is -1 + 2.326; TAR = 1 - Phi(0.326).
    tar = M.tar_at_far(curve, 1e-2)
    assert tar.tar == pytest.approx(0.3722, abs=0.01) and tar.note == ""
    # Perfectly separated scores: accuracy 1, EER 0, AUC 1.
    perfect = M.roc(np.r_[np.ones(10), np.zeros(10)], np.r_[np.ones(10, bool), np.zeros(10, bool)])
    assert M.auc(perfect) == 1.0 and M.eer(perfect) == 0.0


def test_far_that_impostors_cannot_support_is_stated():
    s, y = _synthetic(n=600)
    t = M.tar_at_far(M.roc(s, y), 1e-4)
    assert t.tar is None and "cannot be estimated" in t.note and "all-vs-all" in t.note


def test_kfold_thresholds_from_other_folds():
    s, y = _synthetic(n=2000)
    folds = np.arange(2000) % 10
    results = M.kfold(s, y, folds)
    assert len(results) == 10
    for r in results:
        train = folds != r.fold
        assert r.threshold == M.best_threshold(s[train], y[train], balanced=False)
        acc, _ = M.accuracies(s[folds == r.fold], y[folds == r.fold], r.threshold)
        assert r.accuracy == acc
    # The Bayes threshold for equal priors is 0: accuracy ~ Phi(1) = 0.841.
    assert np.mean([r.accuracy for r in results]) == pytest.approx(0.841, abs=0.02)
    assert M.kfold(s, y, np.zeros(2000)) == []


def test_balanced_accuracy_on_unbalanced_folds():
    s, y = _synthetic(n=3000)
    keep = y | (np.arange(3000) % 3 == 0)  # drop two thirds of the impostors
    results = M.kfold(s[keep], y[keep], np.arange(keep.sum()) % 5)
    assert all(r.matched > 1.5 * r.mismatched for r in results)
    bal = np.mean([r.balanced_accuracy for r in results])
    assert bal == pytest.approx(0.841, abs=0.03)  # what balanced folds would give


def test_pairs_found_beside_the_dataset(lfw_dev):
    path = find_pairs(lfw_dev)
    assert path.name == "pairs.txt"
    pairs = read_pairs(path)
    assert len(pairs) == 6000 and sum(p.genuine for p in pairs) == 3000


def _small_pairset(lfw_dev, per_class=25):
    """The first ``per_class`` usable pairs of each class in folds 1 and 2 of lfw-dev."""
    from veilbench.data.datasets import lfw
    from veilbench.verification.protocol import match_pairs

    ds = lfw(lfw_dev)
    pairset = match_pairs(ds, read_pairs(find_pairs(lfw_dev)), folds=2)
    kept = []
    for fold in (0, 1):
        for genuine in (True, False):
            kept += [p for p in pairset.pairs if p.fold == fold and p.genuine == genuine][
                :per_class
            ]
    return ds, kept


@pytest.mark.slow
def test_real_pairs_few_folds(lfw_dev):
    """Two folds of lfw-dev's real pairs with SFace: the protocol runs and separates people."""
    from veilbench.models.base import FaceSpace
    from veilbench.plugins import get_plugins
    from veilbench.verification.protocol import match_pairs, verify_model

    ds, kept = _small_pairset(lfw_dev)
    pairset = match_pairs(ds, kept)
    model = get_plugins().registries["models"].get("sface").create(space=FaceSpace()).eval()
    result = verify_model(model, ds, pairset)
    assert result["pairs_scored"] == 100 and result["alignment"]["method"] == "yunet"
    assert result["balanced_accuracy"]["mean"] > 0.9
    assert result["auc"] > 0.95 and result["eer"] < 0.1
    assert [f["fold"] for f in result["folds"]] == [1, 2]


def _pairs_file(path, kept):
    """An official-format pair list (2 folds) holding ``kept``, 5 pairs per class per fold."""
    lines = ["2 5"]
    for fold in (0, 1):
        for genuine in (True, False):
            for p in [p for p in kept if p.fold == fold and p.genuine == genuine][:5]:
                a, b = p.a, p.b
                lines.append(f"{a[0]} {a[1]} {b[1]}" if genuine else f"{a[0]} {a[1]} {b[0]} {b[1]}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_verify_command_json_and_page(lfw_dev, tmp_path):
    from click.testing import CliRunner

    from veilbench.commands import build_cli

    _, kept = _small_pairset(lfw_dev)
    pairs = _pairs_file(tmp_path / "pairs.txt", kept)
    args = ["verify", "--models", "sface", "--dataset", str(lfw_dev), "--pairs", str(pairs)]
    result = CliRunner().invoke(
        build_cli(), [*args, "--json", "--out", str(tmp_path / "out"), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pairs"]["usable"] == 20 and doc["pairs"]["missing"] == 0
    assert doc["protocol"]["folds"] == 2 and doc["models"][0]["model"] == "sface"
    assert json.loads((tmp_path / "out" / "verify.json").read_text()) == doc
    page = (tmp_path / "out" / "verify.html").read_text()
    assert "<svg" in page and "<script" not in page and "http://" not in page.split("<svg")[0]
    assert "cannot be estimated" in page  # 10 impostor pairs support no FAR below 1e-1


def test_verify_bad_pairs_file_is_one_line(lfw_dev, tmp_path):
    from click.testing import CliRunner

    from veilbench.commands import build_cli

    bad = tmp_path / "pairs.txt"
    bad.write_text("10 300\nAnn 1\n")
    result = CliRunner().invoke(
        build_cli(), ["verify", "--models", "sface", "--dataset", str(lfw_dev), "--pairs", str(bad)]
    )
    assert result.exit_code != 0
    assert "pairs.txt" in result.output and "Traceback" not in result.output


def test_pairs_fetched_when_missing_or_one_clear_line(tmp_path, monkeypatch):
    import hashlib

    from veilbench.verification import pairs as P

    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    official = tmp_path / "served" / "pairs.txt"
    official.parent.mkdir()
    official.write_text(PAIRS)
    monkeypatch.setattr(P, "PAIRS_MIRRORS", ())
    monkeypatch.setattr(P, "PAIRS_MD5", hashlib.md5(PAIRS.encode()).hexdigest())
    monkeypatch.setenv("VEILBENCH_LFW_PAIRS_MIRRORS", official.as_uri())
    photos = tmp_path / "photos"
    photos.mkdir()
    with pytest.raises(DataError, match="--pairs PATH"):
        find_pairs(photos)  # not the LFW archive: nothing is fetched
    fetched = find_pairs(photos, download=True)
    assert fetched.read_text() == PAIRS and fetched.is_relative_to(tmp_path / "cache")
    monkeypatch.setenv("VEILBENCH_LFW_PAIRS_MIRRORS", (tmp_path / "nowhere.txt").as_uri())
    fetched.unlink()
    with pytest.raises(DataError, match="none could be fetched.*--pairs PATH"):
        find_pairs(photos, download=True)
