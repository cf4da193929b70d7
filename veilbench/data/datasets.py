"""Datasets: image folders (LFW included), the synthetic smoke set, and the prepared-crop cache.

A dataset is a list of ``(identity, file)`` references. Preparing it turns every photo into a
canonical crop (see :mod:`veilbench.models.base`); prepared crops are cached on disk, keyed by
the source file's sha256 and the alignment settings, so a rerun reads PNGs instead of running
the detector again. Files that cannot be used are collected with the reason, never fatal.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from veilbench.data.images import load_rgb, save_png
from veilbench.errors import DataError
from veilbench.weights import cache_dir

if TYPE_CHECKING:  # the model module imports torch; dataset listing must not
    from veilbench.models.base import FaceSpace

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

#: Where LFW deep-funneled is served, tried in order (the md5 below guards every one of them):
#: the official site over https and http, and the Internet Archive's copy of the official file.
#: ``$VEILBENCH_LFW_MIRRORS`` (space-separated URLs) is tried first.
LFW_MIRRORS = (
    "https://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz",
    "http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz",
    "https://web.archive.org/web/2019id_/http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz",
)
#: The archive's published MD5 (the checksum torchvision and TFDS pin; no sha256 is published).
LFW_MD5 = "68331da3eb755a505a502b5aacb3c201"


@dataclass(frozen=True)
class ImageRef:
    """One photo of one person."""

    #: Who is in the photo (photos of one person share it).
    identity: str
    #: The image file.
    path: Path


@dataclass
class FaceDataset:
    """A set of photos grouped by identity, and how to turn them into canonical crops.

    ``alignment`` is ``"yunet"`` (detect + 5-point align), ``"center"`` (a fixed box for already
    aligned sets such as LFW deep-funneled) or ``"none"`` (files already are canonical crops).
    """

    #: Shown in results and reports.
    name: str
    #: The folder the photos come from.
    root: Path
    #: Every photo, grouped by identity in :meth:`by_identity`.
    refs: list[ImageRef]
    #: "yunet" (detect and align), "center" (fixed box) or "none" (files are canonical crops).
    alignment: str = "yunet"
    #: True for generated faces: every result and report then warns that numbers mean nothing.
    synthetic: bool = False
    #: One line about the data, shown in reports.
    description: str = ""
    #: Unusable files with reasons: ``[{"identity", "file", "reason"}]``.
    problems: list[dict] = field(default_factory=list)

    def by_identity(self) -> dict[str, list[ImageRef]]:
        groups: dict[str, list[ImageRef]] = defaultdict(list)
        for ref in self.refs:
            groups[ref.identity].append(ref)
        return dict(groups)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "root": str(self.root),
            "images": len(self.refs),
            "identities": len({r.identity for r in self.refs}),
            "alignment": self.alignment,
            "synthetic": self.synthetic,
            "description": self.description,
        }


def image_folder(root: str | os.PathLike, name: str | None = None, alignment: str = "yunet"):
    """A ``<identity>/<image>`` folder (LFW's layout), files in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    refs = [
        ImageRef(d.name, f)
        for d in sorted(p for p in root.iterdir() if p.is_dir())
        for f in sorted(d.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not refs:
        raise DataError(f"no images found under {root} (expected <identity>/<image> files)")
    return FaceDataset(name or root.name, root, refs, alignment=alignment)


def lfw(path: str | os.PathLike | None = None, alignment: str = "yunet") -> FaceDataset:
    """LFW from its official folder or ``.tgz`` (deep-funneled or original).

    Photos are YuNet-aligned by default, deep-funneled ones too: the fixed ``"center"`` box
    costs the pretrained models verification accuracy on LFW View 2 (docs/models.md,
    "Verification (LFW View 2)").
    """
    if path is None:
        path = _find_lfw()
    path = Path(path)
    if path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
        path = _extract_lfw(path)
    if not any(path.glob("*/*.jpg")) and any(path.glob("*/*/*.jpg")):
        path = next(p for p in path.iterdir() if p.is_dir())  # the archive's top folder
    deep_funneled = "deepfunneled" in str(path).replace("-", "").replace("_", "")
    ds = image_folder(path, name="lfw", alignment=alignment if deep_funneled else "yunet")
    ds.description = "Labeled Faces in the Wild" + (" (deep-funneled)" if deep_funneled else "")
    return ds


def _find_lfw() -> Path:
    for candidate in (cache_dir() / "lfw" / "lfw-deepfunneled", cache_dir() / "lfw" / "lfw"):
        if candidate.is_dir():
            return candidate
    archive = cache_dir() / "lfw" / "lfw-deepfunneled.tgz"
    if not archive.is_file():
        download_lfw(archive)
    return archive


def lfw_mirrors() -> list[str]:
    extra = os.environ.get("VEILBENCH_LFW_MIRRORS", "").split()
    return extra + [u for u in LFW_MIRRORS if u not in extra]


def download_lfw(target: Path, timeout: float = 30.0) -> Path:
    """Fetch the LFW deep-funneled archive from the first mirror that serves the right bytes."""
    from veilbench.data.download import download

    return download(lfw_mirrors(), target, LFW_MD5, timeout=timeout)


def _extract_lfw(archive: Path) -> Path:
    """Unpack once into the cache (atomically: an interrupted unpack leaves nothing behind)."""
    out = cache_dir() / "lfw"
    top = out / archive.name.split(".")[0]
    if not top.is_dir():
        # Into a scratch folder first: a failed or killed extraction never looks finished.
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".extract-") as scratch:
            try:
                with tarfile.open(archive) as t:
                    t.extractall(scratch, filter="data")
            except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as exc:
                raise DataError(
                    f"dataset archive {archive} cannot be read ({' '.join(str(exc).split())}): "
                    "it is corrupt, "
                    "truncated or not a .tgz; download it again or pass the extracted folder"
                ) from exc
            folders = [p for p in Path(scratch).iterdir() if p.is_dir()]
            if len(folders) != 1:
                raise DataError(
                    f"dataset archive {archive} does not hold one top folder of "
                    "<identity>/<image> files, as the LFW archives do"
                )
            os.replace(folders[0], top)
    return top


# Prepared crops -----------------------------------------------------------------------------


@dataclass
class PreparedFaces:
    """Canonical crops of a dataset's usable photos (uint8, N x S x S x 3) and their refs."""

    refs: list[ImageRef]
    crops: np.ndarray
    hashes: list[str]
    problems: list[dict]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(
    dataset: FaceDataset,
    refs: list[ImageRef],
    space: FaceSpace,
    *,
    cache: bool = True,
    workers: int = 4,
    progress: bool = False,
) -> PreparedFaces:
    """Canonical crops for ``refs`` (cached by file hash + alignment settings)."""
    key = f"{dataset.alignment}-t{space.template_size}-m{space.margin}-v1"
    cache_root = cache_dir() / "prepared" / key
    aligner = None
    if dataset.alignment != "none":
        from veilbench.data.align import FaceAligner

        aligner = FaceAligner(space, method=dataset.alignment)

    def one(ref: ImageRef) -> tuple[np.ndarray | None, str, str]:
        try:
            digest = file_sha256(ref.path)
        except OSError as exc:
            return None, "", f"unreadable: {exc}"
        cached = cache_root / digest[:2] / f"{digest}.png"
        if cache and cached.is_file():
            return load_rgb(cached), digest, ""
        try:
            image = load_rgb(ref.path)
            if aligner is None:
                crop = _resize_square(image, space.size)
            else:
                crop = np.clip(np.rint(aligner.align(image).crop), 0, 255).astype(np.uint8)
        except DataError as exc:
            return None, digest, str(exc)
        if cache:
            save_png(cached, crop)
        return crop, digest, ""

    from veilbench.progress import progress_bar

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            progress_bar(pool.map(one, refs), total=len(refs), desc="prepare", enable=progress)
        )
    kept, crops, hashes, problems = [], [], [], []
    for ref, (crop, digest, reason) in zip(refs, results, strict=True):
        if crop is None:
            problems.append({"identity": ref.identity, "file": str(ref.path), "reason": reason})
        else:
            kept.append(ref)
            crops.append(crop)
            hashes.append(digest)
    size = space.size
    array = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return PreparedFaces(kept, array, hashes, problems)


def _resize_square(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    import cv2

    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
