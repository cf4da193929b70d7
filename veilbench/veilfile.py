"""The veil file (``.veil``): one crafted protection, lossless, with where it came from.

A ``.veil`` file is a zip archive holding

- ``meta.json``: format and version, alpha, protector name and config, the identity, the
  surrogate models (name + weight sha256), the sha256 of each crafting image, the veilbench
  version, the UTC creation time and free-form crafting statistics;
- the veil itself, losslessly: ``veil.png`` (RGB, uint8) when the veil is integral and inside
  [0, 255], else ``veil.npy`` (float32). A per-image protection (AVIH) stores one perturbation
  per image as ``veil-0000.png``, ``veil-0001.png``, ... or one ``veil.npy`` of shape n x 3 x S x S.

Files are written atomically (temp file + rename) and readable by their owner only (0o600): a
veil is a token that lets anyone be recognised as its owner by the crafting model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import veilbench
from veilbench.errors import VeilFileError

FORMAT = "veilbench-veil"
FORMAT_VERSION = 1
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
    version: str = field(default_factory=lambda: veilbench.__version__)
    #: UTC creation time (ISO 8601).
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def per_image(self) -> bool:
        return self.veil.ndim == 4

    @property
    def size(self) -> int:
        return int(self.veil.shape[-1])

    def metadata(self) -> dict:
        """Everything but the pixels, as stored in ``meta.json``."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "alpha": self.alpha,
            "protector": self.protector,
            "identity": self.identity,
            "config": self.config,
            "surrogates": self.surrogates,
            "image_sha256": self.image_sha256,
            "clip": self.clip,
            "shape": list(self.veil.shape),
            "stats": self.stats,
            "version": self.version,
            "created": self.created,
        }


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


def save_veil(path: str | os.PathLike, veil: Veil) -> Path:
    """Write ``veil`` to ``path`` atomically, readable by its owner only (0o600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    members = {"meta.json": json.dumps(veil.metadata(), indent=2, sort_keys=True).encode()}
    members.update(_encode(veil.veil))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                for name, data in members.items():
                    z.writestr(name, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a reader sees the old file or the whole new one, never a part
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _decode_png(data: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as im:
        if im.mode != "RGB":
            raise ValueError(f"veil PNG has mode {im.mode}, expected RGB")
        return torch.from_numpy(np.array(im)).permute(2, 0, 1).float()


def load_veil(path: str | os.PathLike) -> Veil:
    """Read a ``.veil`` file; raise :class:`VeilFileError` if it is missing, corrupt or foreign."""
    path = Path(path)
    fix = "re-craft the veil (veilbench protect) or restore the file from a backup"
    if not path.is_file():
        raise VeilFileError(f"veil file {path} does not exist; check the path or {fix}")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "meta.json" not in names:
                raise VeilFileError(f"{path} is not a veil file (no meta.json); {fix}")
            meta = json.loads(z.read("meta.json"))
            if meta.get("format") != FORMAT:
                raise VeilFileError(f"{path} is not a veilbench veil file; {fix}")
            if meta.get("format_version", 0) > FORMAT_VERSION:
                raise VeilFileError(
                    f"{path} uses veil format {meta['format_version']}, newer than this "
                    f"veilbench ({veilbench.__version__}) reads; upgrade veilbench"
                )
            shape = tuple(meta["shape"])
            if "veil.npy" in names:
                pixels = torch.from_numpy(
                    np.load(io.BytesIO(z.read("veil.npy")), allow_pickle=False)
                ).float()
            elif len(shape) == 3:
                pixels = _decode_png(z.read("veil.png"))
            else:
                pixels = torch.stack(
                    [_decode_png(z.read(f"veil-{i:04d}.png")) for i in range(shape[0])]
                )
    except VeilFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise VeilFileError(f"veil file {path} is corrupt or incomplete ({exc}); {fix}") from exc
    if tuple(pixels.shape) != shape:
        raise VeilFileError(
            f"veil file {path} holds pixels of shape {tuple(pixels.shape)} but its metadata "
            f"says {shape}; {fix}"
        )
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
        version=meta.get("version", ""),
        created=meta.get("created", ""),
    )


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


def recover_images(
    veil: Veil, protected: torch.Tensor, gaussian_sigma: float = 0.0
) -> torch.Tensor:
    """Recover (eq. 14, dividing by alpha): ``(x' - (1 - alpha) * veil) / alpha``, in [0, 255].

    Exact where the blend did not clip, up to the quantisation of ``protected`` (error at most
    0.5 / alpha for uint8). ``gaussian_sigma > 0`` adds the paper's optional Gaussian filter.
    """
    v = _fit(veil, protected)
    x = (protected - (1 - veil.alpha) * v) / veil.alpha
    if gaussian_sigma > 0:
        x = gaussian_blur(x, gaussian_sigma)
    return x.clamp(0, 255)
