"""The public pool: photos of people outside the evaluation, for k-same and targeted cloaks.

k-same replaces a face by the mean of its nearest pool faces; a Fawkes-style cloak pulls a face
toward a pool identity. Neither may draw on the evaluation gallery: a k-same mean of gallery
faces, or a cloak target enrolled in the gallery, would match a gallery identity and count that
match as privacy. A pool is either a folder (``<identity>/<image>``, prepared to canonical crops
like any dataset) or the identities of a run's dataset with no photo in its split
(:func:`unused_identities`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from veilbench.data.datasets import FaceDataset, image_folder, prepare
from veilbench.data.protocol import Split
from veilbench.data.space import ALIGNMENTS
from veilbench.errors import ConfigError, DataError
from veilbench.models.base import FaceModel, FaceSpace


@dataclass
class PublicPool:
    """Canonical crops (N x 3 x S x S, [0, 255]) of people outside the evaluation."""

    photos: torch.Tensor
    identities: list[str]

    def __len__(self) -> int:
        return len(self.identities)

    @torch.no_grad()
    def embed(self, model: FaceModel, device: torch.device, batch: int = 64) -> torch.Tensor:
        """Every pool photo's embedding by ``model`` (N x D, on the CPU)."""
        parts = [
            model(self.photos[i : i + batch].to(device)).float().cpu()
            for i in range(0, len(self.photos), batch)
        ]
        return torch.cat(parts)

    def centroids(self, embeddings: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """Each pool identity's normalised mean embedding (names sorted)."""
        names = sorted(set(self.identities))
        rows = [
            embeddings[[i for i, who in enumerate(self.identities) if who == name]].mean(0)
            for name in names
        ]
        return names, torch.nn.functional.normalize(torch.stack(rows), dim=1)


def unused_identities(dataset: FaceDataset, split: Split) -> list[str]:
    """The dataset's identities with no photo anywhere in the split (probe or gallery)."""
    used = {p.identity for p in split.probes} | {r.identity for r in split.distractors}
    return sorted(set(dataset.by_identity()) - used)


def load_pool(
    dataset: FaceDataset,
    space: FaceSpace,
    *,
    identities: list[str] | None = None,
    max_photos: int = 200,
    seed: int = 0,
) -> PublicPool:
    """Up to ``max_photos`` prepared photos (one per identity first, seeded) of ``identities``
    (default: all of the dataset's)."""
    groups = dataset.by_identity()
    names = sorted(groups if identities is None else set(identities) & set(groups))
    rng = random.Random(seed)
    rng.shuffle(names)
    # One photo of as many people as the cap allows, then more photos of the same people.
    refs, depth = [], 0
    while len(refs) < max_photos and any(len(groups[n]) > depth for n in names):
        refs += [groups[n][depth] for n in names if len(groups[n]) > depth]
        depth += 1
    prepared = prepare(dataset, refs[:max_photos], space)
    if not prepared.refs:
        raise DataError(f"the public pool {dataset.root} has no usable face photo")
    photos = torch.from_numpy(prepared.crops).permute(0, 3, 1, 2).float()
    return PublicPool(photos, [r.identity for r in prepared.refs])


def pool_from_folder(
    folder: str, space: FaceSpace, alignment: str, max_photos: int, seed: int
) -> PublicPool:
    """The pool named by a protector's ``pool`` parameter (a ConfigError when it is unusable)."""
    if not folder:
        raise ConfigError(
            "this protector needs a public pool of people outside the evaluation: "
            "--param pool=DIR (an <identity>/<image> folder)"
        )
    if not Path(folder).is_dir():
        raise ConfigError(f"pool {folder!r} is not a folder of <identity>/<image> photos")
    dataset = image_folder(folder, alignment=alignment)
    return load_pool(dataset, space, max_photos=max_photos, seed=seed)


@dataclass
class PoolConfig:
    """The public-pool settings shared by protectors that draw on one."""

    #: A folder of ``<identity>/<image>`` photos of people outside the evaluation.
    pool: str = ""
    #: How the pool's photos become canonical crops (one of ``ALIGNMENTS``).
    pool_alignment: str = "yunet"
    #: Pool photos used at most (one per person first).
    pool_photos: int = 200
    #: Seed of the choice of pool photos.
    pool_seed: int = 0

    def __post_init__(self) -> None:
        if self.pool_alignment not in ALIGNMENTS:
            raise ConfigError(
                f"pool_alignment must be one of {', '.join(ALIGNMENTS)}, "
                f"got {self.pool_alignment!r}"
            )
        if self.pool_photos < 1:
            raise ConfigError(f"pool_photos must be >= 1, got {self.pool_photos}")
        after = getattr(super(), "__post_init__", None)  # the other config of a combined class
        if after is not None:
            after()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PoolEmbeddings:
    """A pool and its embeddings by each model that needs them (model name -> N x D, CPU)."""

    pool: PublicPool
    embeddings: dict[str, torch.Tensor]

    @classmethod
    def measure(
        cls,
        config: PoolConfig,
        models: list[FaceModel],
        device: torch.device,
        pool: PublicPool | None = None,
    ) -> PoolEmbeddings:
        """Embed ``pool`` (default: the folder ``config.pool``) with every model."""
        if pool is None:
            space = models[0].space if models else FaceSpace()
            pool = pool_from_folder(
                config.pool, space, config.pool_alignment, config.pool_photos, config.pool_seed
            )
        return cls(pool, {m.name: pool.embed(m, device) for m in models})


def pick_model(models: list[FaceModel], name: str) -> FaceModel:
    """The surrogate called ``name`` ("" = the first); a ConfigError naming the others."""
    if not models:
        raise ConfigError("this protector needs a face model to craft with")
    if not name:
        return models[0]
    for m in models:
        if m.name == name:
            return m
    raise ConfigError(
        f"model {name!r} is not among the crafting models ({', '.join(m.name for m in models)})"
    )


def reserve_pools(
    protectors: Iterable[Any],
    dataset: FaceDataset,
    split: Split,
    space: FaceSpace,
    log: Callable[[str], None] = lambda message: None,
) -> None:
    """Give each protector that draws on a public pool but names no folder (``pool`` unset)
    a pool of the run's own dataset: people with no photo anywhere in the split, so no pool
    face is a probe or sits in the evaluation gallery. One pool per setting, shared."""
    unused = unused_identities(dataset, split)
    pools: dict[tuple[int, int], PublicPool] = {}
    for protector in protectors:
        cfg = getattr(protector, "config", None)
        if getattr(protector, "pool", "") is not None or not isinstance(cfg, PoolConfig):
            continue  # no pool drawn on, or one given already
        if cfg.pool:
            continue  # the user named a folder
        key = (cfg.pool_photos, cfg.pool_seed)
        if key not in pools:
            pools[key] = load_pool(
                dataset, space, identities=unused, max_photos=cfg.pool_photos, seed=cfg.pool_seed
            )
            log(
                f"public pool: {len(pools[key])} photos of {len(set(pools[key].identities))} "
                f"people outside the split (of {len(unused)} unused)"
            )
        protector.pool = pools[key]
