"""insightface model packs (``buffalo_l``, ``antelopev2``): found on disk or fetched, hash-checked.

A pack is a zip of ONNX files from insightface's GitHub release. Its recognition model becomes a
white-box veilbench model through the ONNX-to-torch path (checked against onnxruntime on first
load): ``buffalo_l`` -> ``arcface_r50`` (ArcFace R50 trained on WebFace600K), ``antelopev2`` ->
``arcface_r100`` (ArcFace R100 on Glint360K).

Where a pack is looked for, in order: ``$INSIGHTFACE_HOME/models/<pack>/`` (default
``~/.insightface``, where insightface itself keeps them), then veilbench's cache
(``$VEILBENCH_CACHE/insightface/<pack>/``), where ``veilbench weights fetch <pack>`` unpacks
it. The download resumes an interrupted ``.part`` file (HTTP Range).

Hashes: insightface publishes no checksum for its packs, so veilbench records what it first sees
(trust on first use): the archive's sha256 at download, and each unpacked file's sha256, in
``$VEILBENCH_CACHE/packs.json``. Every later download and every load is checked against that
record; a pack whose hash is pinned in :data:`PACKS` is checked against the pin instead.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veilbench.errors import ConfigError, WeightsError
from veilbench.weights import cache_dir, sha256_file

RELEASE = "https://github.com/deepinsight/insightface/releases/download/v0.7/"


@dataclass(frozen=True)
class ModelPack:
    """One insightface pack and the recognition model veilbench registers from it."""

    name: str
    url: str
    #: The recognition ONNX file inside the pack.
    recognition: str
    #: The name veilbench registers its recognition model under.
    model: str
    description: str
    #: The archive's published sha256; None: trust on first use (recorded, then enforced).
    sha256: str | None = None
    licence: str = "non-commercial research use only (insightface model packs)"


PACKS: dict[str, ModelPack] = {
    "buffalo_l": ModelPack(
        "buffalo_l",
        RELEASE + "buffalo_l.zip",
        "w600k_r50.onnx",
        "arcface_r50",
        "ArcFace ResNet-50 trained on WebFace600K (insightface buffalo_l)",
    ),
    "antelopev2": ModelPack(
        "antelopev2",
        RELEASE + "antelopev2.zip",
        "glintr100.onnx",
        "arcface_r100",
        "ArcFace ResNet-100 trained on Glint360K (insightface antelopev2)",
    ),
}


def get_pack(name: str) -> ModelPack:
    if name not in PACKS:
        raise ConfigError(f"unknown model pack {name!r}; known: {', '.join(PACKS)}")
    return PACKS[name]


def pack_dirs(pack: ModelPack) -> list[Path]:
    """Where the pack's files may be, insightface's own folder first."""
    home = os.environ.get("INSIGHTFACE_HOME") or os.path.expanduser("~/.insightface")
    return [Path(home) / "models" / pack.name, cache_dir() / "insightface" / pack.name]


def find_pack(pack: ModelPack) -> Path | None:
    """The folder holding the pack's recognition model, or None."""
    return next((d for d in pack_dirs(pack) if (d / pack.recognition).is_file()), None)


def _record_path() -> Path:
    return cache_dir() / "packs.json"


def read_records() -> dict[str, Any]:
    """The recorded hashes of every pack seen: ``{pack: {"archive", "files", "how"}}``."""
    try:
        return json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_record(name: str, record: dict[str, Any]) -> None:
    from veilbench.files import write_text_atomic

    records = read_records()
    records[name] = record
    _record_path().parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(_record_path(), json.dumps(records, indent=1, sort_keys=True))


def verify_pack(pack: ModelPack, folder: Path) -> Path:
    """The recognition file, checked against the recorded hash (recorded now if none is)."""
    path = folder / pack.recognition
    digest = sha256_file(path)
    record = read_records().get(pack.name)
    if record is None:
        _write_record(
            pack.name,
            {
                "archive": None,
                "files": {pack.recognition: digest},
                "how": f"trust on first use: found on disk at {folder}",
            },
        )
        return path
    expected = record["files"].get(pack.recognition)
    if expected != digest:
        raise WeightsError(
            f"{path} has sha256 {digest}, but {expected} was recorded for pack {pack.name} "
            f"({record['how']}); replace the file, or delete its entry in {_record_path()} "
            "to trust it anew"
        )
    return path


def hash_status(pack: ModelPack) -> str:
    """How the pack's bytes are checked, in words (for ``veilbench weights list``)."""
    if pack.sha256:
        return f"pinned sha256 {pack.sha256[:12]}"
    record = read_records().get(pack.name)
    if record is None:
        return "no published hash: recorded on first download or load (trust on first use)"
    digest = record["archive"] or record["files"][pack.recognition]
    return f"hash recorded ({record['how']}): {digest[:12]}..."


def fetch_pack(
    name: str, *, url: str | None = None, log: Callable[[str], None] = lambda m: None
) -> Path:
    """The pack's folder: found on disk, or downloaded (resumable), hash-checked and unpacked."""
    from veilbench.data.download import _fetch_into

    pack = get_pack(name)
    folder = find_pack(pack)
    if folder is not None:
        verify_pack(pack, folder)
        return folder
    target = cache_dir() / "insightface" / pack.name
    part = cache_dir() / "insightface" / f"{pack.name}.zip.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    source = url or pack.url
    log(f"downloading {pack.name} from {source}")
    try:
        _fetch_into(source, part, timeout=60)
    except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
        raise WeightsError(
            f"could not download pack {pack.name} from {source} ({exc}); rerun to resume, or "
            f"unpack {pack.name}.zip into {pack_dirs(pack)[0]}"
        ) from exc
    digest = sha256_file(part)
    record = read_records().get(pack.name) or {}
    expected = pack.sha256 or record.get("archive")
    if expected and digest != expected:
        part.unlink()
        how = "pinned" if pack.sha256 else f"recorded ({record.get('how')})"
        raise WeightsError(
            f"downloaded {pack.name}.zip has sha256 {digest}, not the {how} {expected}; "
            "refused and deleted"
        )
    files = _unpack(part, pack, target)
    part.unlink()
    how = "pinned" if pack.sha256 else f"trust on first use: downloaded from {source}"
    _write_record(pack.name, {"archive": digest, "files": files, "how": how})
    return target


def _unpack(archive: Path, pack: ModelPack, target: Path) -> dict[str, str]:
    """Unpack the ONNX files (flattened: some packs nest a folder) into ``target``, atomically."""
    try:
        with (
            zipfile.ZipFile(archive) as z,
            tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpack-") as tmp,
        ):
            members = [m for m in z.infolist() if m.filename.endswith(".onnx")]
            names = {Path(m.filename).name for m in members}
            if pack.recognition not in names:
                raise WeightsError(
                    f"{pack.name}.zip holds no {pack.recognition} (has {sorted(names)}); "
                    "not the insightface pack"
                )
            staged = Path(tmp) / pack.name
            staged.mkdir()
            for m in members:  # names only: no path inside the zip can escape the folder
                with z.open(m) as src, open(staged / Path(m.filename).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            files = {p.name: sha256_file(p) for p in staged.iterdir()}
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staged, target)
    except zipfile.BadZipFile as exc:
        archive.unlink(missing_ok=True)
        raise WeightsError(f"{pack.name}.zip is not a zip archive ({exc}); deleted") from exc
    return files


def pack_card(name: str):
    """The model card of a pack's recognition model (the embedding size is ArcFace's 512)."""
    from veilbench.models.card import InputSpec, ModelCard

    pack = get_pack(name)
    return ModelCard(
        name=pack.model,
        architecture=f"insightface {pack.recognition} (ONNX -> torch)",
        embedding_size=512,
        input=InputSpec(size=112, mean=(127.5,) * 3, std=(127.5,) * 3),
        licence=pack.licence,
        source=f"insightface model pack {pack.name} ({pack.url})",
        paper="Deng et al., ArcFace: Additive Angular Margin Loss for Deep Face Recognition, "
        "CVPR 2019",
        pretrained=True,
        weights=[{"name": pack.recognition, "sha256": hash_status(pack), "sources": [pack.url]}],
    )


def create_pack_model(name: str, space=None, **_: Any):
    """The pack's recognition model as a white-box FaceModel (conversion checked once)."""
    from veilbench.models.onnx_model import create_onnx_model

    pack = get_pack(name)
    folder = find_pack(pack)
    if folder is None:
        raise WeightsError(
            f"model pack {pack.name} is not on disk; run `veilbench weights fetch {pack.name}` "
            f"or unpack {pack.name}.zip into {pack_dirs(pack)[0]}"
        )
    from veilbench.models.onnx_model import detect_input_spec, load_onnx

    path = verify_pack(pack, folder)
    card = pack_card(name)
    graph = load_onnx(path)
    card.input = detect_input_spec(graph)  # as insightface's arcface_onnx.py reads it
    dims = graph.graph.output[0].type.tensor_type.shape.dim
    card.embedding_size = dims[-1].dim_value or card.embedding_size
    card.weights = [{"name": pack.recognition, "sha256": sha256_file(path), "sources": [str(path)]}]
    return create_onnx_model(path, card=card, space=space)
