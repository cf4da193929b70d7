"""Clean (unprotected) 1:N rank-1 identification of a face model on lfw-dev.

Protocol: the people with >= 20 photos are the probes; each one's first ``--enrol`` photos
(sorted by file name) go into the gallery together with one photo of each of ``--distractors``
one-photo people; every remaining probe photo is a query, matched (cosine, top-1) against all
gallery images. A query whose face is not found counts as a miss; a gallery photo whose face is
not found is left out. Both are counted in the output.

    PYTHONPATH=. python benchmarks/clean_rank1.py sface --align yunet center
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from veilbench.data.align import FaceAligner
from veilbench.data.images import load_rgb
from veilbench.errors import DataError
from veilbench.models.base import FaceModel

REPO = Path(__file__).resolve().parents[1]


def _factories() -> dict[str, Callable[[], FaceModel]]:
    from veilbench.models.sface import create_sface

    return {"sface": create_sface}


@dataclass
class Protocol:
    """Gallery and query photos, with identity labels."""

    gallery: list[Path]
    gallery_ids: list[str]
    queries: list[Path]
    query_ids: list[str]


def lfw_protocol(root: Path, min_photos: int = 20, enrol: int = 10, distractors: int = 2000):
    """The probe / gallery / distractor split described in the module docstring."""
    people = {p.name: sorted(p.glob("*.jpg")) for p in sorted(root.iterdir()) if p.is_dir()}
    probes = [n for n, photos in people.items() if len(photos) >= min_photos]
    singles = [n for n, photos in people.items() if len(photos) == 1]
    if not probes or len(singles) < distractors:
        raise DataError(
            f"{root} has {len(probes)} people with >= {min_photos} photos and {len(singles)} "
            f"one-photo people; need >= 1 and >= {distractors}: lower --distractors"
        )
    proto = Protocol([], [], [], [])
    for name in probes:
        proto.gallery += people[name][:enrol]
        proto.gallery_ids += [name] * enrol
        proto.queries += people[name][enrol:]
        proto.query_ids += [name] * (len(people[name]) - enrol)
    for name in singles[:distractors]:
        proto.gallery += people[name]
        proto.gallery_ids.append(name)
    return proto


@torch.no_grad()
def embed(
    model: FaceModel, aligner: FaceAligner, paths: list[Path], batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings of ``paths`` (zero rows where no face was found) and a found-mask."""
    crops, found = [], []
    for path in paths:
        try:
            crops.append(aligner.align(load_rgb(path)).crop)
            found.append(True)
        except DataError:
            crops.append(np.zeros((aligner.space.size,) * 2 + (3,), np.float32))
            found.append(False)
    out = []
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(np.stack(crops[i : i + batch])).permute(0, 3, 1, 2)
        out.append(model(x).numpy())
    emb = np.concatenate(out)
    mask = np.array(found)
    emb[~mask] = 0.0
    return emb, mask


def clean_rank1(model: FaceModel, aligner: FaceAligner, proto: Protocol) -> dict:
    """Rank-1 identification rate of ``model`` under ``proto`` with ``aligner``'s crops."""
    t0 = time.perf_counter()
    gal, gal_ok = embed(model, aligner, proto.gallery)
    qry, qry_ok = embed(model, aligner, proto.queries)
    gal_ids = np.array(proto.gallery_ids)[gal_ok]
    best = (qry @ gal[gal_ok].T).argmax(1)
    hits = (gal_ids[best] == np.array(proto.query_ids)) & qry_ok
    return {
        "model": model.name,
        "align": aligner.method,
        "rank1": float(hits.mean()),
        "hits": int(hits.sum()),
        "queries": len(proto.queries),
        "gallery": int(gal_ok.sum()),
        "probe_people": len(set(proto.query_ids)),
        "no_face_queries": int((~qry_ok).sum()),
        "no_face_gallery": int((~gal_ok).sum()),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: print one JSON line per alignment method."""
    factories = _factories()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(factories))
    ap.add_argument("--align", nargs="+", default=["yunet", "center"], choices=["yunet", "center"])
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("VEILBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))
        / "lfw-dev",
    )
    ap.add_argument("--enrol", type=int, default=10)
    ap.add_argument("--distractors", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    proto = lfw_protocol(args.data, enrol=args.enrol, distractors=args.distractors)
    model = factories[args.model]().eval()
    for method in args.align:
        result = clean_rank1(model, FaceAligner(model.space, method=method), proto)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
