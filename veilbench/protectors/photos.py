"""Protecting and recovering photo files with a saved veil (the library side of the
``protect`` and ``recover`` commands).

Protected photos are written as lossless PNG: recovery divides by alpha, so every quantisation
or compression error in the protected file comes back 1/alpha = 5 times larger. Each protected
PNG carries a per-photo veil fingerprint, so recovering with another veil says so instead of
returning noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from veilbench.data.crops import canonical_crops
from veilbench.data.images import png_text, write_images
from veilbench.models.base import FaceSpace
from veilbench.veilcrypt import PNG_KEY, photo_tag, tag_matches
from veilbench.veilfile import Veil, apply_veil, out_of_range

#: Photos per Ray Data batch for ``protect --executor ray``: big enough that a batch's
#: scheduling cost is small next to decoding, aligning and encoding it.
PROTECT_BATCH = 64
#: Out-of-range share above which a photo is taken as not protected with the given veil: the
#: right veil gives ~0 (PNG) and at most a few % (JPEG q >= 90), another veil most pixels.
MISMATCH = 0.05
#: Extra tolerance (grey levels after recovery) for JPEG's compression error.
JPEG_SLACK = 12.0


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 crops as an N x 3 x H x W float tensor (0-255)."""
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`to_tensor`, rounded into 0-255."""
    return images.clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def veil_space(veil: Veil) -> FaceSpace:
    """The default face space when it matches the veil's size, else a margin-free one."""
    default = FaceSpace()
    return default if default.size == veil.size else FaceSpace(margin=0, template_size=veil.size)


@dataclass
class ProtectJob:
    """What protecting any batch of photos needs: the veil, the crop space, output names."""

    veil: Any
    space: FaceSpace
    alignment: str
    targets: dict[Path, Path]
    fmt: str
    quality: int
    force: bool


def protect_files(job: ProtectJob, paths: Sequence[Path]) -> tuple[int, list[dict]]:
    """Read, blend and write one batch of photos; photos written and problems of the rest."""
    kept, crops, problems = canonical_crops(paths, job.space, job.alignment)
    if not kept:
        return 0, problems
    protected = to_uint8(apply_veil(job.veil, to_tensor(crops)))
    names = [job.targets[p] for p in kept]

    def fingerprint() -> dict[str, str]:  # a fresh salt per photo: tags do not link photos
        return {PNG_KEY: photo_tag(job.veil.veil)}

    written, unwritten = write_images(
        names, protected, job.fmt, job.quality, job.force, fingerprint
    )
    return len(written), problems + unwritten


def mismatches(
    veil: Veil, paths: Sequence[Path], crops: np.ndarray, images: torch.Tensor, slack: float
) -> list[dict | None]:
    """Per photo None when this veil can recover it, else the problem (file and reason)."""
    if not len(paths):
        return []
    grey = (crops[..., 0] == crops[..., 1]).all((1, 2)) & (crops[..., 1] == crops[..., 2]).all(
        (1, 2)
    )
    outside = out_of_range(veil, images, slack) if veil.clip == "veil" else torch.zeros(len(paths))
    problems: list[dict | None] = []
    for path, is_grey, share in zip(paths, grey, outside.tolist(), strict=True):
        tag = png_text(path).get(PNG_KEY)
        if tag is not None and tag_matches(veil.veil, tag) is False:
            reason = (
                "its veil fingerprint does not match this veil: it was protected with another "
                "veil (use that one)"
            )
        elif is_grey:
            reason = (
                "grey-scale, but a protected photo is in colour: recover the PNG that veilbench "
                "protect wrote, not a grey copy"
            )
        elif share > MISMATCH:
            reason = (
                f"{share:.0%} of its values recover outside 0-255: it was protected with another "
                "veil (use that one), or changed since (JPEG, resizing, editing), which no veil "
                "can undo; keep protected photos as the PNGs veilbench protect writes"
            )
        else:
            problems.append(None)
            continue
        problems.append({"file": str(path), "reason": reason})
    return problems
