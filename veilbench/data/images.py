"""Reading any common image as RGB uint8, and writing PNGs atomically."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

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
            elif im.mode.startswith("I") or im.mode == "F":
                im = _wide_grey_to_rgb(im, path)
            else:
                im = im.convert("RGB")  # grayscale, palette, CMYK, 48-bit RGB (high bytes)...
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


def _wide_grey_to_rgb(im: Image.Image, path: Path) -> Image.Image:
    """A 16-bit grey image scaled to 8 bits (PIL's own convert saturates it: 65535 -> 255)."""
    wide = np.asarray(im)
    if im.mode == "F" or wide.min() < 0 or wide.max() > 65535:
        raise DataError(
            f"image {path.name} holds {im.mode} values in [{wide.min()}, {wide.max()}], not 8 or "
            f"16-bit grey levels: save it as an 8-bit or 16-bit PNG or JPEG ({path})"
        )
    grey = np.rint(wide.astype(np.float64) / 257.0).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")


def save_png(path: str | os.PathLike, image: np.ndarray, *, replace: bool = True) -> Path:
    """Write an H x W x 3 (or H x W) uint8 array as PNG, atomically (temp file + rename).

    ``replace=False`` refuses (``FileExistsError``) to replace a file that exists by then.
    """
    return save_image(path, image, replace=replace)


def save_image(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    fmt: str = "PNG",
    quality: int = 95,
    replace: bool = True,
    text: Mapping[str, str] | None = None,
) -> Path:
    """:func:`save_png` for any format PIL writes (``quality`` for JPEG); ``text`` goes into
    PNG text chunks (other formats carry none)."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise DataError(
            f"save_png({path.name}) needs an H x W x 3 uint8 array, got {image.dtype} "
            f"{image.shape}; convert with np.clip(x, 0, 255).round().astype(np.uint8)"
        )
    with atomic_write(path, replace=replace) as f:
        info = None
        if text and fmt.upper() == "PNG":
            info = PngInfo()
            for key, value in text.items():
                info.add_text(key, value)
        Image.fromarray(image).save(f, format=fmt, quality=quality, pnginfo=info)
    return path


def png_text(path: str | os.PathLike) -> dict[str, str]:
    """The text chunks of a PNG file; empty for other formats and unreadable files."""
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                return {}
            im.load()  # text chunks after the pixels are read only with them
            return {k: v for k, v in getattr(im, "text", {}).items() if isinstance(v, str)}
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError):
        return {}


def workers() -> int:
    """Threads for reading and writing photos: decoding and encoding release the GIL."""
    return min(8, (os.cpu_count() or 2) * 2)


def write_images(
    targets: Sequence[Path],
    images: np.ndarray,
    fmt: str,
    quality: int,
    force: bool,
    text: Callable[[], dict[str, str]] | None = None,
) -> list[Path]:
    """Write each image to its target in parallel (PNG lossless); never over a file that
    appeared since the names were checked unless ``force``. ``text()`` gives each PNG's text
    chunks (called once per image)."""
    def one(args: tuple[Path, np.ndarray]) -> Path:
        target, image = args
        try:
            if fmt == "png":
                return save_image(target, image, replace=force, text=text() if text else None)
            return save_image(target, image, fmt="JPEG", quality=quality, replace=force)
        except FileExistsError:
            raise DataError(f"{target} appeared while writing; nothing was overwritten") from None

    with ThreadPoolExecutor(workers()) as pool:
        return list(pool.map(one, zip(targets, images, strict=True)))
