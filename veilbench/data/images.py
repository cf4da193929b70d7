"""Reading any common image as RGB uint8, and writing PNGs atomically.

Every image veilbench reads goes through :func:`open_image`: the size an image declares in its
header is checked before a pixel is decoded, so a file declaring 30000 x 30000 pixels (a few
bytes on disk, gigabytes decoded) is refused with its reason, and the photos beside it are read.
The limit is :data:`DEFAULT_MAX_PIXELS` (250 megapixels: real phone and camera photos, which
Pillow's own limit of 89 megapixels refuses), or ``$VEILBENCH_MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from veilbench.errors import ConfigError, DataError
from veilbench.files import atomic_write

#: Images with a side shorter than this hold too few pixels for a face crop.
MIN_SIDE = 32
#: The most pixels an image may declare (width x height) to be decoded.
DEFAULT_MAX_PIXELS = 250_000_000
MAX_PIXELS_ENV = "VEILBENCH_MAX_IMAGE_PIXELS"
# Pillow's own limit is a process-wide setting: it is lifted only while a header is read.
_HEADER_LOCK = threading.Lock()


def max_pixels() -> int:
    """The pixel limit: ``$VEILBENCH_MAX_IMAGE_PIXELS`` when set, else the default."""
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(
            f"{MAX_PIXELS_ENV}={value!r}: give a whole number of pixels, e.g. 250000000"
        )
    return limit


@contextmanager
def open_image(
    source: str | os.PathLike | IO[bytes], *, limit: int | None = None, name: str = ""
) -> Iterator[Image.Image]:
    """An image opened with only its header read, refused (:class:`DataError`) when it declares
    more than ``limit`` pixels [:func:`max_pixels`]; its pixels decode on ``load()``."""
    limit = limit or max_pixels()
    is_path = isinstance(source, str | os.PathLike)
    name = name or (Path(source).name if is_path else "image")
    where = f" ({source})" if is_path else ""
    with _HEADER_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # this function's own check replaces Pillow's
        try:
            im = Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    try:
        w, h = im.size
        if w * h > limit:
            raise DataError(
                f"image {name} declares {w} x {h} px ({w * h / 1e6:.0f} megapixels), over the "
                f"limit of {limit / 1e6:.0f}; not decoded (a larger limit: ${MAX_PIXELS_ENV})"
                + where
            )
        yield im
    finally:
        im.close()


def load_rgb(path: str | os.PathLike, min_side: int = MIN_SIDE) -> np.ndarray:
    """Read an image file as an H x W x 3 uint8 RGB array (EXIF orientation applied)."""
    path = Path(path)
    try:
        with open_image(path) as im:
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
    except MemoryError:
        raise DataError(f"image {path.name} is too large to decode in memory ({path})") from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
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
        with open_image(path) as im:
            if im.format != "PNG":
                return {}
            im.load()  # text chunks after the pixels are read only with them
            return {k: v for k, v in getattr(im, "text", {}).items() if isinstance(v, str)}
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, DataError):
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
) -> tuple[list[Path], list[dict]]:
    """Write each image to its target in parallel (PNG lossless): the files written, and a
    problem (file, reason) for each one not written.

    A target that appeared since the names were checked (another process writing into the same
    folder) is left as it is unless ``force``: this call writes what is free and says exactly
    what it did not write. ``text()`` gives each PNG's text chunks (called once per image).
    """

    def one(args: tuple[Path, np.ndarray]) -> str | None:
        target, image = args
        try:
            if fmt == "png":
                save_image(target, image, replace=force, text=text() if text else None)
            else:
                save_image(target, image, fmt="JPEG", quality=quality, replace=force)
        except FileExistsError:
            return "appeared while writing (another process writing there?); it was left as it is"
        except DataError as exc:  # a full disk
            return str(exc)
        except OSError as exc:
            return f"cannot be written ({exc.strerror or exc}); nothing written"
        return None

    with ThreadPoolExecutor(workers()) as pool:
        reasons = list(pool.map(one, zip(targets, images, strict=True)))
    written = [t for t, r in zip(targets, reasons, strict=True) if r is None]
    problems = [{"file": str(t), "reason": r} for t, r in zip(targets, reasons, strict=True) if r]
    return written, problems
