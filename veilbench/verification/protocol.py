"""LFW View 2 verification for one model: photos -> embeddings -> pair scores -> metrics.

Photos are aligned as the dataset says (``yunet`` or the fixed ``center`` box); a photo in
which YuNet finds no face is cropped with the fixed box instead, and counted. Embeddings are
cached on disk per model, keyed by photo hash *and* alignment (and flip), so the two alignments
never share an entry.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from veilbench.data.align import DETECTORS
from veilbench.data.datasets import FaceDataset, ImageRef, prepare
from veilbench.evaluation.identification import EmbeddingCache
from veilbench.models.base import FaceModel
from veilbench.verification.metrics import auc, eer, kfold, roc, tar_at_far
from veilbench.verification.pairs import Pair, photo_file

FARS = (1e-2, 1e-3, 1e-4)
#: FARs at which the stored ROC is sampled (the JSON and the page keep ~100 points, not millions).
ROC_GRID = np.r_[0.0, np.logspace(-6, 0, 97)]


@dataclass
class PairSet:
    """The pairs whose two photos both exist, the photos they use, and the pairs left out."""

    pairs: list[Pair]
    missing: list[Pair]
    refs: list[ImageRef]
    index: dict[tuple[str, int], int]

    def make_up(self) -> dict:
        folds = sorted({p.fold for p in self.pairs} | {p.fold for p in self.missing})
        per_fold = [
            {
                "fold": f + 1,
                "matched": sum(p.genuine for p in self.pairs if p.fold == f),
                "mismatched": sum(not p.genuine for p in self.pairs if p.fold == f),
            }
            for f in folds
        ]
        return {
            "total": len(self.pairs) + len(self.missing),
            "usable": len(self.pairs),
            "missing": len(self.missing),
            "matched": sum(p.genuine for p in self.pairs),
            "mismatched": sum(not p.genuine for p in self.pairs),
            "missing_matched": sum(p.genuine for p in self.missing),
            "missing_mismatched": sum(not p.genuine for p in self.missing),
            "folds": per_fold,
        }


def match_pairs(dataset: FaceDataset, pairs: list[Pair], folds: int | None = None) -> PairSet:
    """Split ``pairs`` (optionally only the first ``folds`` folds) into usable and missing."""
    if folds is not None:
        pairs = [p for p in pairs if p.fold < folds]
    present = {ref.path: ref for ref in dataset.refs}
    usable, missing, refs, index = [], [], [], {}
    for pair in pairs:
        files = [photo_file(dataset.root, photo) for photo in (pair.a, pair.b)]
        if not all(f in present for f in files):
            missing.append(pair)
            continue
        usable.append(pair)
        for photo, f in zip((pair.a, pair.b), files, strict=True):
            if photo not in index:
                index[photo] = len(refs)
                refs.append(present[f])
    return PairSet(usable, missing, refs, index)


@dataclass
class Embedded:
    """L2-normalised embeddings of a pair set's photos (rows in ``PairSet.refs`` order)."""

    embeddings: np.ndarray
    #: How the photos were aligned: method, photos with no face found and what was done.
    alignment: dict = field(default_factory=dict)


def embed_photos(
    model: FaceModel,
    dataset: FaceDataset,
    refs: list[ImageRef],
    *,
    flip: bool = False,
    device: str = "cpu",
    batch_size: int = 64,
) -> Embedded:
    """Align, crop and embed ``refs``; a photo with no face found falls back to the centre box."""
    prepared = prepare(dataset, refs, model.space)
    crops, keys = [prepared.crops], [[f"{dataset.alignment}:{h}" for h in prepared.hashes]]
    kept = list(prepared.refs)
    no_face = [p["file"] for p in prepared.problems]
    unusable: list[dict] = []
    if prepared.problems and dataset.alignment in DETECTORS:
        retry = {p["file"] for p in prepared.problems}
        centre = prepare(
            replace(dataset, alignment="center"),
            [r for r in refs if str(r.path) in retry],
            model.space,
        )
        crops.append(centre.crops)
        keys.append([f"center:{h}" for h in centre.hashes])
        kept += centre.refs
        unusable = centre.problems
    else:
        unusable = prepared.problems
        no_face = []
    all_crops = np.concatenate(crops)
    all_keys = [k for part in keys for k in part]
    cache = EmbeddingCache(model)
    kw = {"device": device, "batch_size": batch_size}
    emb = cache.get_or_compute(model, all_keys, all_crops, **kw)[0].numpy()
    if flip:  # the mirror image's embedding added, as the models' authors evaluate
        mirrored = np.ascontiguousarray(all_crops[:, :, ::-1])
        emb = (
            emb
            + cache.get_or_compute(model, [k + ":flip" for k in all_keys], mirrored, **kw)[
                0
            ].numpy()
        )
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    rows = {ref.path: i for i, ref in enumerate(kept)}
    out = np.full((len(refs), emb.shape[1]), np.nan, np.float32)
    for i, ref in enumerate(refs):
        if ref.path in rows:
            out[i] = emb[rows[ref.path]]
    info = {
        "method": dataset.alignment,
        "photos": len(refs),
        "no_face": len(no_face),
        "no_face_action": "cropped with the fixed centre box" if no_face else "",
        "no_face_files": [_short(dataset, f) for f in no_face],
        "unusable": [{"file": _short(dataset, p["file"]), "reason": p["reason"]} for p in unusable],
    }
    return Embedded(out, info)


def _short(dataset: FaceDataset, file: str) -> str:
    """<identity>/<file>: no machine paths in results."""
    parts = file.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if dataset.root else file


def pair_scores(
    pairset: PairSet, embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cosine score, genuine, fold) per usable pair; pairs with an unusable photo score NaN."""
    a = np.array([pairset.index[p.a] for p in pairset.pairs], dtype=int)
    b = np.array([pairset.index[p.b] for p in pairset.pairs], dtype=int)
    scores = np.einsum("ij,ij->i", embeddings[a], embeddings[b]).astype(np.float64)
    genuine = np.array([p.genuine for p in pairset.pairs], dtype=bool)
    folds = np.array([p.fold for p in pairset.pairs], dtype=int)
    return scores, genuine, folds


def all_impostor_scores(pairset: PairSet, embeddings: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Cosine scores of every pair of photos of different people among the pair set's photos."""
    ids = np.array([ref.identity for ref in pairset.refs])
    ok = ~np.isnan(embeddings).any(axis=1)
    emb, ids = embeddings[ok], ids[ok]
    out = []
    for start in range(0, len(emb), chunk):
        block = emb[start : start + chunk] @ emb.T
        rows = np.arange(start, min(start + chunk, len(emb)))[:, None]
        keep = (np.arange(len(emb))[None, :] > rows) & (
            ids[start : start + chunk, None] != ids[None, :]
        )
        out.append(block[keep])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _mean_std(values: list[float]) -> dict:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return {"mean": None, "std": None}
    return {"mean": float(v.mean()), "std": float(v.std())}


def evaluate_scores(
    scores: np.ndarray,
    genuine: np.ndarray,
    folds: np.ndarray,
    impostor_scores: np.ndarray | None = None,
) -> dict:
    """Every metric from pair scores (``impostor_scores``: all-vs-all ones for the ROC)."""
    ok = np.isfinite(scores)
    s, y, f = scores[ok], genuine[ok], folds[ok]
    per_fold = kfold(s, y, f)
    if impostor_scores is not None:
        curve = roc(
            np.r_[s[y], impostor_scores],
            np.r_[np.ones(int(y.sum()), bool), np.zeros(len(impostor_scores), bool)],
        )
    else:
        curve = roc(s, y)
    sampled = [float(curve.tar[np.flatnonzero(curve.far <= g + 1e-15)[-1]]) for g in ROC_GRID]
    return {
        "pairs_scored": int(ok.sum()),
        "pairs_unscored": int((~ok).sum()),
        "accuracy": _mean_std([r.accuracy for r in per_fold]),
        "balanced_accuracy": _mean_std([r.balanced_accuracy for r in per_fold]),
        "folds": [asdict(r) | {"fold": r.fold + 1} for r in per_fold],
        "auc": auc(curve),
        "eer": eer(curve),
        "impostors": "all-vs-all" if impostor_scores is not None else "pairs",
        "genuine_pairs": curve.genuine,
        "impostor_pairs": curve.impostors,
        "tar_at_far": [tar_at_far(curve, far).to_dict() for far in FARS],
        "roc": {"far": ROC_GRID.tolist(), "tar": sampled},
    }


def verify_model(
    model: FaceModel,
    dataset: FaceDataset,
    pairset: PairSet,
    *,
    flip: bool = False,
    all_impostors: bool = False,
    device: str = "cpu",
    batch_size: int = 64,
) -> dict:
    """The protocol's result for one model (see :func:`evaluate_scores`), with its alignment."""
    t0 = time.perf_counter()
    embedded = embed_photos(
        model, dataset, pairset.refs, flip=flip, device=device, batch_size=batch_size
    )
    scores, genuine, folds = pair_scores(pairset, embedded.embeddings)
    impostors = all_impostor_scores(pairset, embedded.embeddings) if all_impostors else None
    result = {"model": model.name, "alignment": embedded.alignment, "flip": flip}
    result |= evaluate_scores(scores, genuine, folds, impostors)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result
