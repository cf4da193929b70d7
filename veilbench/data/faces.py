"""A run's photos as tensors: the protocol's split turned into prepared canonical crops."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from veilbench.data.datasets import FaceDataset, ImageRef, PreparedFaces, prepare
from veilbench.data.protocol import ProtocolConfig, Split, split
from veilbench.data.space import FaceSpace


def as_nchw(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8/float N x H x W x 3 (numpy) or N x 3 x H x W (torch) -> float N x 3 x H x W."""
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return images.float()


@dataclass
class Faces:
    """Prepared canonical crops (uint8 N x S x S x 3) with identities and file hashes."""

    crops: np.ndarray
    identities: list[str]
    hashes: list[str]
    files: list[str]  # <identity>/<file name>: no machine paths

    def take(self, idx: list[int]) -> Faces:
        return Faces(
            self.crops[idx],
            [self.identities[i] for i in idx],
            [self.hashes[i] for i in idx],
            [self.files[i] for i in idx],
        )

    def tensor(self) -> torch.Tensor:
        return as_nchw(self.crops)

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass
class ProbeFaces:
    """One probe identity: the photos its veil is crafted on and held-out photos."""

    identity: str
    craft: Faces
    held_out: Faces

    def subset(self, name: str) -> Faces:
        return self.craft if name == "craft" else self.held_out


@dataclass
class EvalData:
    split: Split
    probes: list[ProbeFaces]
    gallery: Faces
    problems: list[dict] = field(default_factory=list)

    def fingerprint(self) -> str:
        """sha256 over every photo the run used: the dataset's identity, wherever it lives."""
        digest = hashlib.sha256()
        for faces in [self.gallery, *(f for p in self.probes for f in (p.craft, p.held_out))]:
            for identity, h in zip(faces.identities, faces.hashes, strict=True):
                digest.update(f"{identity}:{h}\n".encode())
        return digest.hexdigest()


def prepare_data(
    dataset: FaceDataset,
    protocol: ProtocolConfig,
    space: FaceSpace,
    *,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> EvalData:
    """Split, prepare every photo the split needs, and split again on the usable ones."""
    first = split(dataset, protocol)
    wanted = [r for p in first.probes for r in p.craft + p.enrol + p.held_out] + first.distractors
    log(f"preparing {len(wanted)} photos ({dataset.name}, alignment {dataset.alignment})")
    prepared: PreparedFaces = prepare(dataset, wanted, space, progress=progress)
    where = {str(r.path): i for i, r in enumerate(prepared.refs)}
    final = split(dataset, protocol, usable=set(where))

    def faces(refs: list[ImageRef]) -> Faces:
        idx = [where[str(r.path)] for r in refs]
        return Faces(
            prepared.crops[idx],
            [r.identity for r in refs],
            [prepared.hashes[i] for i in idx],
            [f"{r.identity}/{r.path.name}" for r in refs],
        )

    probes = [ProbeFaces(p.identity, faces(p.craft), faces(p.held_out)) for p in final.probes]
    problems = [_relative(p, dataset) for p in prepared.problems]
    return EvalData(final, probes, faces(final.gallery()), problems)


def _relative(problem: dict, dataset: FaceDataset) -> dict:
    """A problem's file relative to the dataset's root (results carry no machine paths)."""
    file = problem.get("file")
    if file:
        try:
            problem = {**problem, "file": str(Path(file).relative_to(dataset.root))}
        except ValueError:
            problem = {**problem, "file": Path(file).name}
    return problem
