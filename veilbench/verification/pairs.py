"""LFW's pair lists (``pairs.txt``): reading them, finding them, and matching them to photos.

The official format: a first line ``<folds> <pairs per class>`` (``10 300`` for View 2), then
per fold that many matched lines ``name i j`` followed by as many mismatched lines
``name1 i name2 j``; image ``name i`` is the file ``<name>/<name>_<iiii>.jpg``. View 1 files
(``pairsDevTrain.txt``) have a single count on the first line and are read as one fold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from veilbench.errors import DataError
from veilbench.weights import cache_dir

#: Where the official View 2 pairs are served (the md5 below guards every one of them).
#: ``$VEILBENCH_LFW_PAIRS_MIRRORS`` (space-separated URLs) is tried first.
PAIRS_MIRRORS = (
    "https://vis-www.cs.umass.edu/lfw/pairs.txt",
    "http://vis-www.cs.umass.edu/lfw/pairs.txt",
    "https://raw.githubusercontent.com/umass-vis-lfw/umass-vis-lfw.github.io/"
    "2a620cd8cceb10430f8c7012fe9fa5f0837759e9/pairs.txt",
)
PAIRS_MD5 = "9f1ba174e4e1c508ff7cdf10ac338a7d"


@dataclass(frozen=True)
class Pair:
    """Two photos of the protocol, by (identity, 1-based image number)."""

    fold: int
    genuine: bool
    a: tuple[str, int]
    b: tuple[str, int]


def parse_pairs(text: str, source: str = "pairs.txt") -> list[Pair]:
    """Every pair of an official pair list, with its fold; DataError on a malformed line."""
    lines = [line.split() for line in text.splitlines()]
    lines = [fields for fields in lines if fields]
    if not lines:
        raise DataError(f"{source} is empty; expected LFW's pairs.txt format")
    try:
        head = [int(v) for v in lines[0]]
    except ValueError:
        raise DataError(
            f"{source}: first line {' '.join(lines[0])!r} is not '<folds> <n>'"
        ) from None
    folds, per_class = (head[0], head[1]) if len(head) == 2 else (1, head[0] // 2)
    body = lines[1:]
    if len(head) not in (1, 2) or len(body) != folds * 2 * per_class:
        raise DataError(
            f"{source}: the header promises {folds} folds of 2 x {per_class} pairs, "
            f"but {len(body)} pair lines follow"
        )
    pairs = []
    for n, fields in enumerate(body):
        fold = n // (2 * per_class)
        try:
            if len(fields) == 3:
                pairs.append(
                    Pair(fold, True, (fields[0], int(fields[1])), (fields[0], int(fields[2])))
                )
            elif len(fields) == 4:
                pairs.append(
                    Pair(fold, False, (fields[0], int(fields[1])), (fields[2], int(fields[3])))
                )
            else:
                raise ValueError
        except ValueError:
            raise DataError(
                f"{source}, line {n + 2}: {' '.join(fields)!r} is neither 'name i j' "
                "nor 'name1 i name2 j'"
            ) from None
    return pairs


def pairs_candidates(dataset_root: Path) -> list[Path]:
    """Where a pair list is looked for: beside the photos, one folder up, and the cache."""
    root = Path(dataset_root)
    return [
        root / "pairs.txt",
        root.parent / "pairs.txt",
        root.parent / "lfw-protocol" / "pairs.txt",
        cache_dir() / "lfw" / "pairs.txt",
    ]


def find_pairs(dataset_root: Path, *, download: bool = False) -> Path:
    """The first pair list beside the dataset; downloaded into the cache when asked to."""
    root = Path(dataset_root)
    for path in pairs_candidates(root):
        if path.is_file():
            return path
    if download:
        from veilbench.data.download import download as fetch

        extra = os.environ.get("VEILBENCH_LFW_PAIRS_MIRRORS", "").split()
        urls = extra + [u for u in PAIRS_MIRRORS if u not in extra]
        try:
            return fetch(urls, cache_dir() / "lfw" / "pairs.txt", PAIRS_MD5)
        except DataError as exc:
            raise DataError(
                f"no pairs.txt beside {root} and none could be fetched ({exc}); pass --pairs PATH"
            ) from exc
    looked = ", ".join(str(p) for p in pairs_candidates(root))
    raise DataError(f"no pairs.txt found (looked at {looked}); pass --pairs PATH")


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read pair list {path}: {exc}") from exc
    return parse_pairs(text, str(path))


def photo_file(root: Path, photo: tuple[str, int]) -> Path:
    name, number = photo
    return root / name / f"{name}_{number:04d}.jpg"
