"""Photo files to canonical face crops, in parallel, with one problem line per unusable photo."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from veilbench.data.images import load_rgb, workers
from veilbench.errors import DataError

if TYPE_CHECKING:
    from veilbench.data.space import FaceSpace


def canonical_crops(
    paths: Sequence[Path],
    space: FaceSpace,
    alignment: str,
    not_a_crop: str = "use --alignment yunet",
) -> tuple[list[Path], np.ndarray, list[dict]]:
    """Canonical crops (uint8 N x S x S x 3) of the usable photos, and the problems of the rest.

    With ``alignment="none"`` a photo of another size is a problem; ``not_a_crop`` says the fix.
    """
    aligner = None
    if alignment != "none":
        from veilbench.data.align import FaceAligner

        aligner = FaceAligner(space, method=alignment)

    def one(path: Path) -> np.ndarray | str:
        try:
            image = load_rgb(path)
            if aligner is None or image.shape[:2] == (space.size, space.size):
                if image.shape[:2] != (space.size, space.size):
                    return f"not a {space.size} px canonical crop ({not_a_crop})"
                return image
            return np.clip(np.rint(aligner.align(image).crop), 0, 255).astype(np.uint8)
        except DataError as exc:
            return str(exc)

    with ThreadPoolExecutor(workers()) as pool:
        results = list(pool.map(one, paths))
    pairs = list(zip(paths, results, strict=True))
    kept = [(p, r) for p, r in pairs if not isinstance(r, str)]
    problems = [{"file": str(p), "reason": r} for p, r in pairs if isinstance(r, str)]
    crops = np.stack([r for _, r in kept]) if kept else np.zeros((0, space.size, space.size, 3))
    return [p for p, _ in kept], crops.astype(np.uint8), problems
