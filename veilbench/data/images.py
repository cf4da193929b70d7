"""Reading any common image as RGB uint8, and writing PNGs atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from veilbench.errors import DataError
from veilbench.files import atomic_write

#: Images with a side shorter than this hold too few pixels for a face crop.
MIN_SIDE = 32


def load_rgb(path: str | os.PathLike, min_side: int = MIN_SIDE) -> np.ndarray:
    """Read an image file as an H x W x 3 uint8 RGB array (EXIF orientation applied)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                # Flatten transparency onto white rather than whatever the hidden pixels hold.
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.getchannel("A"))
            else:
                im = im.convert("RGB")  # grayscale, palette, CMYK, 16-bit...
            array = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DataError(f"image {path} does not exist; check the path") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"image {path.name} cannot be read ({exc}); the file is truncated, corrupt or not an "
            f"image: replace or remove it ({path})"
        ) from exc
    h, w = array.shape[:2]
    if min(h, w) < min_side:
        raise DataError(
            f"image {path.name} is {w} x {h} px, smaller than the minimum side of {min_side} px; "
            f"use a larger photo of the face ({path})"
        )
    return array


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an H x W x 3 (or H x W) uint8 array as PNG, atomically (temp file + rename)."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise DataError(
            f"save_png({path.name}) needs an H x W x 3 uint8 array, got {image.dtype} "
            f"{image.shape}; convert with np.clip(x, 0, 255).round().astype(np.uint8)"
        )
    with atomic_write(path) as f:  # a reader sees the old file or the whole new one
        Image.fromarray(image).save(f, format="PNG")
    return path
