"""The veil file (``.veil``): one crafted protection, lossless, with where it came from.

A ``.veil`` file is a zip archive holding

- ``meta.json``: format and version, alpha, protector name and config, the identity, the
  surrogate models (name + weight sha256), the sha256 of each crafting image, the seed of the
  random start, the veilbench version, the UTC creation time and free-form crafting statistics;
- the veil itself, losslessly: ``veil.png`` (RGB, uint8) when the veil is integral and inside
  [0, 255], else ``veil.npy`` (float32). A per-image protection (AVIH) stores one perturbation
  per image as ``veil-0000.png``, ``veil-0001.png``, ... or one ``veil.npy`` of shape n x 3 x S x S.

Files are written atomically (temp file + rename) and readable by their owner only (0o600): a
veil is a token that lets anyone be recognised as its owner by the crafting model, and the key
that undoes every photo protected with it.

With a passphrase the file is encrypted (format version 2, :mod:`veilbench.veilcrypt`): the zip
then holds a public ``meta.json`` header (alpha, shape, protector, model names, fingerprint,
cipher and KDF parameters) and ``veil.enc``, the whole plain veil file sealed with AES-256-GCM
under a scrypt key. Plain files keep format version 1, so older veilbench versions still read
them; an older version reading an encrypted file says it needs a newer veilbench.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import veilbench
from veilbench.data.images import open_image
from veilbench.errors import DataError, VeilFileError
from veilbench.files import atomic_write, private_folder
from veilbench.veilarchive import MAX_SIDE, check_sizes, read_member
from veilbench.veilcrypt import ScryptParams, kdf_params, seal, unseal, veil_id

if TYPE_CHECKING:
    from veilbench.protectors.engine.convergence import VeilConvergence

FORMAT = "veilbench-veil"
#: The newest format this version reads: 2 = encrypted.
FORMAT_VERSION = 2
#: The format plain files are written in (unchanged, so older readers keep reading them).
PLAIN_VERSION = 1
SUFFIX = ".veil"


@dataclass
class Veil:
    """A crafted protection: ``3 x S x S`` (person-wise) or ``n x 3 x S x S`` (per image)."""

    #: The pixels, float in [0, 255]: ``3 x S x S`` for a person, ``n x 3 x S x S`` per image.
    veil: torch.Tensor
    #: Share of the original photo in the protected one: ``alpha * x + (1 - alpha) * veil``.
    alpha: float
    #: The registered name of the protector that crafted it.
    protector: str
    #: Whose veil it is (the identity name it was crafted for).
    identity: str = ""
    #: The protector's hyper-parameters (``config.to_dict()``).
    config: dict = field(default_factory=dict)
    #: The models crafted against: ``[{"name", "sha256"}]``.
    surrogates: list[dict] = field(default_factory=list)
    #: sha256 of each crafting photo (:func:`image_sha256`), tying the veil to them.
    image_sha256: list[str] = field(default_factory=list)
    #: "veil": veil kept in [0, 255], blends never clip; "blend": blends are clipped.
    clip: str = "veil"
    #: Free-form crafting statistics (iterations, losses, timings).
    stats: dict = field(default_factory=dict)
    #: The veilbench version that wrote it.
    #: The seed of the random initial veil: with the photos, model and config it re-creates the
    #: veil, so it is as secret as the veil and lives only in this (owner-only) file.
    seed: int | None = None
    version: str = field(default_factory=lambda: veilbench.__version__)
    #: UTC creation time (ISO 8601).
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def per_image(self) -> bool:
        return self.veil.ndim == 4

    @property
    def size(self) -> int:
        return int(self.veil.shape[-1])

    def public(self) -> dict:
        """What an encrypted file shows without its passphrase: no pixels, identity, seed or
        photo hashes; model names without their weights' hashes."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "alpha": self.alpha,
            "protector": self.protector,
            "surrogates": [
                {"name": s.get("name", "") if isinstance(s, dict) else str(s)}
                for s in self.surrogates
            ],
            "clip": self.clip,
            "shape": list(self.veil.shape),
            "fingerprint": veil_id(self.veil),
            "version": self.version,
            "created": self.created,
        }

    def metadata(self) -> dict:
        """Everything but the pixels, as stored in ``meta.json``."""
        return {
            "format": FORMAT,
            "format_version": PLAIN_VERSION,
            "alpha": self.alpha,
            "protector": self.protector,
            "identity": self.identity,
            "config": self.config,
            "surrogates": self.surrogates,
            "image_sha256": self.image_sha256,
            "clip": self.clip,
            "shape": list(self.veil.shape),
            "stats": self.stats,
            "seed": self.seed,
            "version": self.version,
            "created": self.created,
        }


def convergence_of(veil: Veil) -> VeilConvergence | None:
    """The veil's convergence record (``stats["convergence"]``), None for older veil files.

    See :class:`~veilbench.protectors.engine.convergence.VeilConvergence`: whether every
    crafting photo matched its identity on every surrogate and the visual target held, the
    iterations used and the cap, and each surrogate's fit and calibration.
    """
    # Deferred: the engine package imports this module.
    from veilbench.protectors.engine.convergence import from_stats

    return from_stats(veil.stats)


def image_sha256(images: torch.Tensor) -> list[str]:
    """sha256 of each image's float32 bytes (C order): ties a veil to its crafting photos."""
    arr = images.detach().to("cpu", torch.float32).contiguous().numpy()
    return [hashlib.sha256(a.tobytes()).hexdigest() for a in arr]


def _is_uint8(v: torch.Tensor) -> bool:
    return bool(torch.all((v >= 0) & (v <= 255) & (v == v.round())))


def _png_bytes(chw: torch.Tensor) -> bytes:
    arr = chw.permute(1, 2, 0).to(torch.uint8).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _encode(veil: torch.Tensor) -> dict[str, bytes]:
    """The archive members holding the pixels, losslessly."""
    v = veil.detach().to("cpu", torch.float32)
    if _is_uint8(v):
        if v.ndim == 3:
            return {"veil.png": _png_bytes(v)}
        return {f"veil-{i:04d}.png": _png_bytes(p) for i, p in enumerate(v)}
    buf = io.BytesIO()
    np.save(buf, v.numpy(), allow_pickle=False)
    return {"veil.npy": buf.getvalue()}


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():  # ciphertext does not compress: stored as is
            z.writestr(name, data, zipfile.ZIP_STORED if name == "veil.enc" else None)
    return buf.getvalue()


def save_veil(
    path: str | os.PathLike,
    veil: Veil,
    *,
    replace: bool = True,
    passphrase: bytes | None = None,
    kdf: ScryptParams | None = None,
) -> Path:
    """Write ``veil`` to ``path`` atomically, readable by its owner only (0o600).

    With ``passphrase`` the file is encrypted (see the module docstring; ``kdf`` sets the scrypt
    cost). ``replace=False`` never replaces an existing file, even one created while this one
    was being written: a veil is the only key to the photos protected with it.
    """
    path = Path(path)
    private_folder(path.parent)  # a folder of veils says by its file names whose veils exist
    members = {"meta.json": json.dumps(veil.metadata(), indent=2, sort_keys=True).encode()}
    members.update(_encode(veil.veil))
    if passphrase is not None:
        head, sealed = seal(_zip_bytes(members), passphrase, veil.public(), kdf)
        members = {"meta.json": head, "veil.enc": sealed}
    try:
        with atomic_write(path, mode=0o600, replace=replace) as f:  # a secret: owner only
            f.write(_zip_bytes(members))
    except FileExistsError:
        raise VeilFileError(
            f"{path} already exists; a veil is never replaced without --force"
        ) from None
    return path


_FIX = "craft a new veil (veilbench craft) or restore the file from a backup"


def _decode_png(data: bytes) -> torch.Tensor:
    with open_image(io.BytesIO(data), limit=MAX_SIDE * MAX_SIDE, name="veil PNG") as im:
        if im.mode != "RGB":
            raise ValueError(f"veil PNG has mode {im.mode}, expected RGB")
        return torch.from_numpy(np.array(im)).permute(2, 0, 1).float()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_meta(meta: object, path: Path) -> dict:
    """``meta`` if every field has a usable type and value, else a VeilFileError naming it."""

    def bad(what: str) -> VeilFileError:
        return VeilFileError(f"veil file {path} is corrupt: {what}; {_FIX}")

    if not isinstance(meta, dict):
        raise bad("meta.json is not an object")
    if meta.get("format") != FORMAT:
        raise VeilFileError(f"{path} is not a veilbench veil file; {_FIX}")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad(f"format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise VeilFileError(
            f"{path} uses veil format {version}, newer than this veilbench "
            f"({veilbench.__version__}) reads; upgrade veilbench"
        )
    alpha = meta.get("alpha")
    if not _is_number(alpha) or not math.isfinite(alpha) or not 0 < alpha < 1:
        raise bad(f"alpha {alpha!r} is not a number in (0, 1)")
    shape = meta.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) not in (3, 4)
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
        or shape[-3] != 3
        or shape[-1] != shape[-2]
        or shape[-1] > MAX_SIDE
        or (len(shape) == 4 and shape[0] > 100_000)
    ):
        raise bad(f"shape {shape!r} is not [3, S, S] or [n, 3, S, S]")
    types = {
        "protector": str,
        "identity": str,
        "config": dict,
        "surrogates": list,
        "image_sha256": list,
        "clip": str,
        "stats": dict,
        "version": str,
        "created": str,
    }
    for key, kind in types.items():
        if key == "protector" and key not in meta:
            raise bad("it names no protector")
        if key in meta and not isinstance(meta[key], kind):
            raise bad(f"{key} is a {type(meta[key]).__name__}, not a {kind.__name__}")
    if meta.get("clip", "veil") not in ("veil", "blend"):
        raise bad(f"clip {meta['clip']!r} is neither 'veil' nor 'blend'")
    seed = meta.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise bad(f"seed {seed!r} is not an integer")
    return meta


def _check_pixels(pixels: torch.Tensor, meta: dict, path: Path) -> None:
    shape = tuple(meta["shape"])
    if tuple(pixels.shape) != shape:
        raise VeilFileError(
            f"veil file {path} holds pixels of shape {tuple(pixels.shape)} but its metadata "
            f"says {shape}; {_FIX}"
        )
    if not bool(torch.isfinite(pixels).all()):
        raise VeilFileError(f"veil file {path} is corrupt: its pixels hold NaN or inf; {_FIX}")


def _read_npy(data: bytes) -> torch.Tensor:
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "uif":
        raise ValueError(f"veil.npy holds {getattr(array, 'dtype', type(array))}, not numbers")
    return torch.from_numpy(array.astype(np.float32))


class VeilLockedError(VeilFileError):
    """An encrypted veil file was read without a passphrase."""


#: What a reader of a damaged archive can raise, reported as one VeilFileError.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,  # a deflated member whose bytes were damaged
    KeyError,
    ValueError,
    TypeError,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    Image.DecompressionBombError,
    DataError,
)


def _read_plain(z: zipfile.ZipFile, path: Path) -> tuple[dict, torch.Tensor]:
    check_sizes(z, path, _FIX)
    names = set(z.namelist())
    if "meta.json" not in names:
        raise VeilFileError(f"{path} is not a veil file (no meta.json); {_FIX}")
    meta = _check_meta(json.loads(read_member(z, "meta.json")), path)
    shape = tuple(meta["shape"])
    if "veil.npy" in names:
        pixels = _read_npy(read_member(z, "veil.npy"))
    elif len(shape) == 3:
        pixels = _decode_png(read_member(z, "veil.png"))
    else:
        pixels = torch.stack(
            [_decode_png(read_member(z, f"veil-{i:04d}.png")) for i in range(shape[0])]
        )
    return meta, pixels


def _open(path: Path, passphrase: bytes | None) -> tuple[dict, torch.Tensor | None]:
    """``(metadata, pixels)``; for an encrypted file without a passphrase ``(header, None)``."""
    if not path.is_file():
        raise VeilFileError(f"veil file {path} does not exist; check the path or {_FIX}")
    try:
        with zipfile.ZipFile(path) as z:
            if "veil.enc" not in z.namelist():
                return _read_plain(z, path)
            check_sizes(z, path, _FIX)
            head = read_member(z, "meta.json")
            header = _check_meta(json.loads(head), path)
            if not header.get("encrypted"):
                raise ValueError("veil.enc in a file whose header says it is not encrypted")
            kdf_params(header)  # sane before anyone derives a key with it
            if passphrase is None:
                return header, None
            sealed = read_member(z, "veil.enc")
        inner = unseal(head, sealed, passphrase, path)
        with zipfile.ZipFile(io.BytesIO(inner)) as z:
            meta, pixels = _read_plain(z, path)
        if [meta["alpha"], meta["shape"]] != [header["alpha"], header["shape"]]:
            raise ValueError("the encrypted veil does not match its header")
        return meta, pixels
    except VeilFileError:
        raise
    except _READ_ERRORS as exc:
        raise VeilFileError(f"veil file {path} is corrupt or incomplete ({exc}); {_FIX}") from exc


def load_veil(path: str | os.PathLike, passphrase: bytes | None = None) -> Veil:
    """Read a ``.veil`` file; raise :class:`VeilFileError` if it is missing, corrupt or foreign.

    Every field is checked (types, alpha in (0, 1), finite pixels of the stated shape), so a
    damaged file fails here with the reason instead of protecting or recovering garbage. An
    encrypted file needs its ``passphrase`` (:class:`VeilLockedError` without one); a wrong one
    and a changed file fail authentication with one error.
    """
    path = Path(path)
    meta, pixels = _open(path, passphrase)
    if pixels is None:
        raise VeilLockedError(
            f"veil file {path} is encrypted: give its passphrase (environment variable "
            "VEILBENCH_VEIL_PASSPHRASE, --passphrase-file, or the prompt in a terminal)"
        )
    return _veil_from(meta, pixels, path)


def _veil_from(meta: dict, pixels: torch.Tensor, path: Path) -> Veil:
    _check_pixels(pixels, meta, path)
    return Veil(
        veil=pixels,
        alpha=float(meta["alpha"]),
        protector=meta["protector"],
        identity=meta.get("identity", ""),
        config=meta.get("config", {}),
        surrogates=meta.get("surrogates", []),
        image_sha256=meta.get("image_sha256", []),
        clip=meta.get("clip", "veil"),
        stats=meta.get("stats", {}),
        seed=meta.get("seed"),
        version=meta.get("version", ""),
        created=meta.get("created", ""),
    )


def is_encrypted(path: str | os.PathLike) -> bool:
    """Whether a veil file is encrypted (reads only its header)."""
    return _open(Path(path), None)[1] is None


def veil_info(path: str | os.PathLike) -> dict:
    """The public metadata of a veil file, without decrypting it (``veilbench veil info``).

    For a plain file the same fields as an encrypted header shows (the fingerprint computed
    from its pixels); the secret ones (identity, seed, photo hashes) are left out either way.
    """
    path = Path(path)
    meta, pixels = _open(path, None)
    if pixels is None:
        info = {k: v for k, v in meta.items() if k not in ("nonce", "format")}
        info["kdf"] = {k: v for k, v in meta["kdf"].items() if k != "salt"}
        return info
    veil = _veil_from(meta, pixels, path)
    return {
        **{k: v for k, v in veil.public().items() if k != "format"},
        "format_version": meta["format_version"],
        "encrypted": False,
    }


def _fit(veil: Veil, images: torch.Tensor) -> torch.Tensor:
    """The veil as a tensor broadcastable to ``images``, or a VeilFileError naming the fix."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise VeilFileError(f"images must be N x 3 x H x W, got {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if (h, w) != tuple(veil.veil.shape[-2:]):
        raise VeilFileError(
            f"the veil of {veil.identity or 'this identity'} is {veil.size} x {veil.size} px but "
            f"the images are {h} x {w}: align the images to the canonical {veil.size} px crop "
            f"(the face space the veil was crafted in) or craft a veil at {h} px"
        )
    v = veil.veil.to(images.device, images.dtype)
    if veil.per_image:
        if v.shape[0] != images.shape[0]:
            raise VeilFileError(
                f"this per-image protection ({veil.protector}) holds {v.shape[0]} perturbations "
                f"but got {images.shape[0]} images: apply it only to the images it was crafted on"
            )
        return v
    return v.unsqueeze(0)


def apply_veil(veil: Veil, images: torch.Tensor) -> torch.Tensor:
    """Protect (eq. 12): ``alpha * x + (1 - alpha) * veil``, clipped to [0, 255]."""
    v = _fit(veil, images)
    return (veil.alpha * images + (1 - veil.alpha) * v).clamp(0, 255)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter (radius 3 sigma, reflect padding), per channel."""
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    x = F.pad(images, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, k, groups=3)
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(x, k.transpose(2, 3), groups=3)


def _unblend(veil: Veil, protected: torch.Tensor) -> torch.Tensor:
    """Eq. 14 without clipping: ``(x' - (1 - alpha) * veil) / alpha``."""
    return (protected - (1 - veil.alpha) * _fit(veil, protected)) / veil.alpha


def recover_images(
    veil: Veil, protected: torch.Tensor, gaussian_sigma: float = 0.0
) -> torch.Tensor:
    """Recover (eq. 14, dividing by alpha): ``(x' - (1 - alpha) * veil) / alpha``, in [0, 255].

    Exact where the blend did not clip, up to the quantisation of ``protected`` (error at most
    0.5 / alpha for uint8). ``gaussian_sigma > 0`` adds the paper's optional Gaussian filter.
    """
    x = _unblend(veil, protected)
    if gaussian_sigma > 0:
        x = gaussian_blur(x, gaussian_sigma)
    return x.clamp(0, 255)


def out_of_range(veil: Veil, protected: torch.Tensor, slack: float = 1.0) -> torch.Tensor:
    """Per image, the share of values that recovery puts outside [0, 255] by more than rounding.

    With the veil an image was protected with (clip "veil"), recovery lands in [0, 255] up to
    0.5 / alpha for uint8 files, so the share is ~0; another veil, a re-encoded or recoloured
    file sends most values far outside (the difference of two veils is amplified (1-a)/a times).
    """
    x = _unblend(veil, protected)
    tol = 0.5 / veil.alpha + slack
    outside = (x < -tol) | (x > 255 + tol)
    return outside.flatten(1).float().mean(1)
