"""``veilbench rank1``: clean (unprotected) 1:N identification accuracy of face models.

Protocol: people with >= ``min_images`` photos are probes; each one's first ``enrol`` photos
(sorted by file name) are enrolled in the gallery together with the photo of each of the first
``distractors`` one-photo people; every other probe photo is a query, matched (cosine, top-1)
against every gallery image. Photos whose face is not found are reported; a query without a
face counts as a miss.

    veilbench rank1 --models sface,facenet,dlib_resnet --dataset ../shared/data/lfw-dev
"""

from __future__ import annotations

import time

from veilbench.data.datasets import FaceDataset, ImageRef, prepare
from veilbench.errors import DataError
from veilbench.evaluation.identification import EmbeddingCache, Gallery, rank1
from veilbench.models.base import FaceModel


def clean_protocol(
    dataset: FaceDataset,
    min_images: int = 20,
    enrol: int = 10,
    distractors: int = 2000,
    max_probes: int | None = None,
) -> tuple[list[ImageRef], list[ImageRef]]:
    """(gallery, queries) as the module docstring describes (the first ``max_probes`` probes)."""
    people = dataset.by_identity()
    probes = [n for n, refs in sorted(people.items()) if len(refs) >= min_images]
    probes = probes[:max_probes] if max_probes else probes
    singles = [n for n, refs in sorted(people.items()) if len(refs) == 1]
    if not probes or len(singles) < distractors:
        raise DataError(
            f"{dataset.name} has {len(probes)} people with >= {min_images} photos and "
            f"{len(singles)} one-photo people; need >= 1 and >= {distractors}: lower "
            f"--distractors or --min-images"
        )
    gallery = [r for n in probes for r in sorted(people[n], key=lambda r: r.path.name)[:enrol]]
    gallery += [people[n][0] for n in singles[:distractors]]
    queries = [r for n in probes for r in sorted(people[n], key=lambda r: r.path.name)[enrol:]]
    return gallery, queries


def clean_rank1(
    model: FaceModel,
    dataset: FaceDataset,
    gallery: list[ImageRef],
    queries: list[ImageRef],
    *,
    device: str = "cpu",
    batch_size: int = 64,
) -> dict:
    """Rank-1 of ``model`` (prepared crops and embeddings are cached)."""
    t0 = time.perf_counter()
    g = prepare(dataset, gallery, model.space)
    q = prepare(dataset, queries, model.space)
    cache = EmbeddingCache(model)
    kw = {"device": device, "batch_size": batch_size}
    g_emb, _ = cache.get_or_compute(model, g.hashes, g.crops, **kw)
    q_emb, _ = cache.get_or_compute(model, q.hashes, q.crops, **kw)
    top1 = Gallery(g_emb, [r.identity for r in g.refs]).top1(q_emb)
    hits = int(rank1(top1, [r.identity for r in q.refs]) * len(q.refs))
    return {
        "model": model.name,
        "alignment": dataset.alignment,
        "rank1": hits / len(queries),  # a query whose face was not found is a miss
        "hits": hits,
        "queries": len(queries),
        "gallery": len(g.refs),
        "probe_people": len({r.identity for r in queries}),
        "no_face": [p["file"] for p in g.problems + q.problems],
        "seconds": round(time.perf_counter() - t0, 1),
    }
