"""``verify`` as a library call: a dataset, its pair list and models in, one result document out."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import veilbench
from veilbench.data.datasets import FaceDataset
from veilbench.errors import DataError
from veilbench.files import atomic_write
from veilbench.models.base import FaceModel
from veilbench.verification.pairs import find_pairs, read_pairs
from veilbench.verification.protocol import match_pairs, verify_model

#: Version of the verification document's layout.
VERIFY_SCHEMA = 1


def locate_pairs(dataset: FaceDataset, pairs: str | None) -> Path:
    """``--pairs`` when given, else the list beside the dataset (fetched for the LFW archive)."""
    if pairs:
        if not Path(pairs).is_file():
            raise DataError(f"--pairs {pairs}: no such file")
        return Path(pairs)
    return find_pairs(dataset.root, download=dataset.name == "lfw")


def verify(
    dataset: FaceDataset,
    models: Iterable[FaceModel],
    pairs_file: Path,
    *,
    folds: int | None = None,
    flip: bool = False,
    all_impostors: bool = False,
    device: str = "cpu",
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """The verification document: dataset, pair make-up, protocol and each model's metrics."""
    pairset = match_pairs(dataset, read_pairs(pairs_file), folds)
    if not pairset.pairs:
        raise DataError(
            f"none of the pairs in {pairs_file} has both photos in {dataset.root}: "
            "is this the dataset the pair list belongs to?"
        )
    make_up = pairset.make_up()
    log(
        f"{make_up['usable']:,} of {make_up['total']:,} pairs usable "
        f"({make_up['missing']:,} with a missing photo); {len(pairset.refs):,} photos"
    )
    results = []
    for model in models:
        log(f"verifying {model.name} ...")
        results.append(
            verify_model(
                model, dataset, pairset, flip=flip, all_impostors=all_impostors, device=device
            )
        )
    return {
        "veilbench_verify": VERIFY_SCHEMA,
        "veilbench": veilbench.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {
            "name": dataset.name,
            "description": dataset.description,
            "alignment": dataset.alignment,
            "photos": len(pairset.refs),
        },
        "pairs": {
            "file": pairs_file.name,
            "sha256": hashlib.sha256(pairs_file.read_bytes()).hexdigest(),
            **make_up,
        },
        "protocol": {
            "folds": len(make_up["folds"]),
            "threshold": "each fold's chosen on the other folds",
            "flip": flip,
            "impostors": "all-vs-all" if all_impostors else "pairs",
            "score": "cosine similarity of L2-normalised embeddings",
        },
        "models": results,
    }


def write_outputs(doc: dict, out: Path) -> list[Path]:
    """``verify.json`` and ``verify.html`` (ROC curves) in ``out``."""
    from veilbench.verification.page import render_page

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("verify.json", json.dumps(doc, indent=2) + "\n"),
        ("verify.html", render_page(doc)),
    ):
        with atomic_write(out / name) as f:
            f.write(text.encode("utf-8"))
        written.append(out / name)
    return written
