"""Train a face-recognition model on an image folder, optionally distilled from a teacher.

The dataset is a folder of ``<identity>/<image>`` photos, turned into canonical crops (see
:mod:`veilbench.models.base`) by :mod:`veilbench.data.datasets` (YuNet alignment, LFW
deep-funneled's fixed box, or none for folders of crops). Some identities are held out of
training; the model is scored on them by rank-1 identification (gallery: the first photo of each
held-out identity; queries: the rest), next to chance level and the same architecture untrained.

With a ``teacher`` :class:`~veilbench.models.base.FaceModel` the student also learns to point
its embedding (through a linear projection when the sizes differ) where the teacher's points, a
cosine loss that makes a few CPU epochs go much further than the margin loss alone.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import veilbench
from veilbench.data.datasets import image_folder, prepare
from veilbench.device import pick_device
from veilbench.errors import ConfigError, DataError, NumericalError
from veilbench.files import atomic_write
from veilbench.models.base import FaceModel, FaceSpace
from veilbench.models.checkpoints import (
    CHECKPOINT_FORMAT,
    create_architecture,
    default_card,
)
from veilbench.progress import progress_bar
from veilbench.training.heads import HEADS, create_head


@dataclass
class FaceFolder:
    """Canonical crops of an ``<identity>/<image>`` folder, held in memory as uint8."""

    identities: list[str]
    images: torch.Tensor  # N x 3 x S x S uint8
    labels: torch.Tensor  # N, index into identities
    paths: list[Path]


@dataclass
class TrainResult:
    """Where the checkpoint went, the held-out scores and the per-epoch losses."""

    checkpoint: Path
    metrics: dict
    history: list[dict]


def load_face_folder(
    dataset_dir: str | os.PathLike,
    min_images: int,
    space: FaceSpace | None = None,
    alignment: str = "yunet",
) -> FaceFolder:
    """Canonical crops of every identity of ``dataset_dir`` with >= ``min_images`` usable photos.

    ``alignment`` is as in :class:`veilbench.data.datasets.FaceDataset`: ``yunet`` (detect and
    align), ``center`` (LFW deep-funneled framing) or ``none`` (files are canonical crops).
    """
    space = space or FaceSpace()
    dataset = image_folder(dataset_dir, alignment=alignment)
    groups = dataset.by_identity().values()
    refs = [r for group in groups if len(group) >= min_images for r in group]
    prepared = prepare(dataset, refs, space)
    # Photos the aligner rejected can leave an identity short: count again.
    counts = Counter(r.identity for r in prepared.refs)
    identities = sorted(name for name, n in counts.items() if n >= min_images)
    if not identities:
        raise DataError(
            f"dataset {dataset_dir} has no identity with >= {min_images} usable images; lower "
            "min_images_per_identity or check the <identity>/<image> layout"
        )
    index = {name: i for i, name in enumerate(identities)}
    keep = [i for i, r in enumerate(prepared.refs) if r.identity in index]
    images = torch.from_numpy(prepared.crops[keep]).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([index[prepared.refs[i].identity] for i in keep])
    return FaceFolder(identities, images, labels, [prepared.refs[i].path for i in keep])


@torch.no_grad()
def _embed(
    model: FaceModel, images: torch.Tensor, device: torch.device, batch_size: int = 64
) -> torch.Tensor:
    """L2-normalised embeddings of uint8 canonical crops, in eval mode, on the CPU."""
    was_training = model.training
    model.eval()
    out = [
        model(images[i : i + batch_size].to(device).float()).cpu()
        for i in range(0, len(images), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out)


def rank1(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """Rank-1 identification: (accuracy, query count), gallery = first image of each label."""
    first = {}
    for i, lab in enumerate(labels.tolist()):
        first.setdefault(lab, i)
    gallery_idx = torch.tensor(list(first.values()))
    query_mask = torch.ones(len(labels), dtype=torch.bool)
    query_mask[gallery_idx] = False
    scores = embeddings[query_mask] @ embeddings[gallery_idx].t()
    predicted = labels[gallery_idx][scores.argmax(1)]
    correct = (predicted == labels[query_mask]).float()
    return float(correct.mean()), int(query_mask.sum())


def _save_atomic(obj: dict, out: Path) -> None:
    """torch.save through the atomic writer: never a partial checkpoint."""
    with atomic_write(out) as f:
        torch.save(obj, f)


def _check_settings(head: str, epochs: int, batch_size: int, min_images: int) -> None:
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if epochs < 1 or batch_size < 2:
        raise ConfigError("epochs must be >= 1 and batch_size >= 2 (batch norm needs 2 images)")
    if min_images < 2:
        raise ConfigError(
            "min_images_per_identity must be >= 2 (held-out identities need a "
            "gallery photo and a query)"
        )


@dataclass
class _Split:
    """Training identities (labels renumbered from 0) and the held-out ones (original labels)."""

    train_ids: list[int]
    held: set[int]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def _split(data: FaceFolder, held_out: int, seed: int, min_images: int, batch_size: int) -> _Split:
    """Hold ``held_out`` identities out of training, chosen by ``seed``."""
    n_ids = len(data.identities)
    if held_out < 1 or n_ids - held_out < 2:
        raise ConfigError(
            f"{n_ids} identities have >= {min_images} images; hold out between 1 "
            f"and {n_ids - 2} of them (held_out_identities={held_out})"
        )
    held = set(random.Random(seed).sample(range(n_ids), held_out))
    train_ids = [i for i in range(n_ids) if i not in held]
    remap = torch.full((n_ids,), -1, dtype=torch.long)
    remap[train_ids] = torch.arange(len(train_ids))
    is_train = remap[data.labels] >= 0
    split = _Split(
        train_ids,
        held,
        data.images[is_train],
        remap[data.labels[is_train]],
        data.images[~is_train],
        data.labels[~is_train],
    )
    if len(split.train_images) < batch_size:
        raise ConfigError(
            f"only {len(split.train_images)} training images; use a batch size <= that"
        )
    return split


class _Distiller:
    """The teacher's pull on the student: cosine distance of the (projected) student embedding
    to the teacher's, whose embeddings of each training image (unflipped and flipped) are
    computed on first use and cached."""

    def __init__(self, teacher: FaceModel, student_dim: int, images: int, dev: torch.device):
        self.teacher = teacher
        t_dim = teacher.card.embedding_size
        # Sizes differ (e.g. 512 vs 128): a learnt linear map, dropped after training.
        self.proj = (
            nn.Linear(student_dim, t_dim, bias=False) if t_dim != student_dim else nn.Identity()
        ).to(dev)
        self.cache = torch.zeros(images, 2, t_dim)
        self.known = torch.zeros(images, 2, dtype=torch.bool)

    def loss(
        self, feats: torch.Tensor, x: torch.Tensor, idx: torch.Tensor, flip: torch.Tensor
    ) -> torch.Tensor:
        f = flip.long()
        todo = ~self.known[idx, f]
        if todo.any():
            with torch.no_grad():
                self.cache[idx[todo], f[todo]] = self.teacher(x[todo.to(x.device)]).cpu()
            self.known[idx[todo], f[todo]] = True
        target = self.cache[idx, f].to(feats.device)
        return (1 - F.cosine_similarity(self.proj(feats), target, dim=1)).mean()


def _distiller(
    teacher: FaceModel | None, model: FaceModel, split: _Split, dev: torch.device
) -> tuple[_Distiller | None, float | None]:
    """The distiller (None without a teacher) and the teacher's own held-out rank-1."""
    if teacher is None:
        return None, None
    if teacher.space != model.space:
        raise ConfigError(
            f"teacher {teacher.name} works on {teacher.space}, the student on "
            f"{model.space}; build both on the same FaceSpace"
        )
    teacher = teacher.to(dev).eval()
    teacher_rank1, _ = rank1(_embed(teacher, split.test_images, dev), split.test_labels)
    distiller = _Distiller(teacher, model.card.embedding_size, len(split.train_images), dev)
    return distiller, teacher_rank1


@dataclass
class _Trainer:
    """What one epoch needs: the student, its head, the optional distiller and the optimiser."""

    model: FaceModel
    head: nn.Module
    distiller: _Distiller | None
    distill_weight: float
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator
    batch_size: int
    lr: float
    dev: torch.device

    def epoch(self, split: _Split, epoch: int, progress: bool) -> dict:
        """One pass over the training images in a seeded order; the epoch's mean losses."""
        t0 = time.time()
        sums = {"loss": 0.0, "head_loss": 0.0, "distill_loss": 0.0}
        steps_per_epoch = len(split.train_images) // self.batch_size
        order = torch.randperm(len(split.train_images), generator=self.gen)
        steps = progress_bar(range(steps_per_epoch), desc=f"epoch {epoch}", enable=progress)
        for step in steps:
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            flip = torch.rand(len(idx), generator=self.gen) < 0.5
            x = split.train_images[idx].float()
            x = torch.where(flip[:, None, None, None], x.flip(3), x).to(self.dev)
            y = split.train_labels[idx].to(self.dev)
            feats = self.model.backbone(self.model.preprocess(x)).flatten(1)
            head_loss = self.head.loss(feats, y)
            loss = head_loss
            if self.distiller is not None:
                distill = self.distiller.loss(feats, x, idx, flip)
                loss = loss + self.distill_weight * distill
                sums["distill_loss"] += distill.item()
            if not torch.isfinite(loss):
                raise NumericalError(
                    f"training loss became {loss.item()} at epoch {epoch}, step {step + 1}; "
                    f"lower the learning rate (now {self.lr})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            sums["loss"] += loss.item()
            sums["head_loss"] += head_loss.item()
        record = {
            "epoch": epoch,
            **{k: v / steps_per_epoch for k, v in sums.items()},
            "seconds": round(time.time() - t0, 1),
        }
        if self.distiller is None:
            del record["distill_loss"]
        return record


def _trainer(
    model: FaceModel,
    head: nn.Module,
    distiller: _Distiller | None,
    distill_weight: float,
    split: _Split,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    dev: torch.device,
) -> _Trainer:
    """AdamW over the student, its head and the projection, on a one-cycle schedule."""
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    if distiller is not None:
        params += list(distiller.proj.parameters())
    steps_per_epoch = len(split.train_images) // batch_size
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1
    )
    gen = torch.Generator().manual_seed(seed)
    return _Trainer(
        model, head, distiller, distill_weight, optimizer, schedule, gen, batch_size, lr, dev
    )


def _training_record(
    arch: str,
    head: str,
    dataset_dir: str | os.PathLike,
    alignment: str,
    data: FaceFolder,
    split: _Split,
    settings: dict,
) -> dict:
    """How the model was trained: on what, with which identities held out, with ``settings``."""
    return {
        "arch": arch,
        "head": head,
        "dataset": str(dataset_dir),
        "alignment": alignment,
        "identities": [data.identities[i] for i in split.train_ids],
        "held_out": sorted(data.identities[i] for i in split.held),
        **settings,
    }


def _checkpoint_card(
    arch: str, head: str, dataset_dir: str | os.PathLike, out: Path, training: dict
) -> dict:
    """The trained model's card, with how it was trained."""
    card = default_card(arch)
    card.name = out.stem
    card.pretrained = True
    card.licence = "trained by veilbench; the training data's terms apply"
    card.source = f"veilbench train --arch {arch} --head {head} --dataset {dataset_dir}"
    return card.to_dict() | {"training": training}


def train(
    arch: str,
    head: str,
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    min_images_per_identity: int = 4,
    held_out_identities: int = 20,
    alignment: str = "yunet",
    teacher: FaceModel | None = None,
    distill_weight: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train ``arch`` with ``head`` on ``dataset_dir``; write the checkpoint to ``out``.

    ``log`` receives one line per epoch; ``progress`` shows a per-step bar on a terminal.
    """
    _check_settings(head, epochs, batch_size, min_images_per_identity)
    log = log or (lambda _msg: None)
    dev = pick_device(device)
    torch.manual_seed(seed)
    started = time.time()

    model = create_architecture(arch).to(dev)
    data = load_face_folder(dataset_dir, min_images_per_identity, model.space, alignment)
    split = _split(data, held_out_identities, seed, min_images_per_identity, batch_size)
    log(
        f"{len(split.train_ids)} training identities ({len(split.train_images)} images), "
        f"{held_out_identities} held out ({len(split.test_images)} images), device {dev}"
    )
    rank1_untrained, _ = rank1(_embed(model, split.test_images, dev), split.test_labels)
    head_module = create_head(head, model.card.embedding_size, len(split.train_ids)).to(dev)
    distiller, teacher_rank1 = _distiller(teacher, model, split, dev)
    trainer = _trainer(
        model, head_module, distiller, distill_weight, split, epochs, batch_size, lr, seed, dev
    )
    history = []
    model.train()
    for epoch in range(1, epochs + 1):
        record = trainer.epoch(split, epoch, progress)
        history.append(record)
        losses = " ".join(f"{k}={v:.4f}" for k, v in record.items() if k.endswith("loss"))
        log(f"epoch {epoch}/{epochs}: {losses} ({record['seconds']} s)")

    model.eval()
    score, queries = rank1(_embed(model, split.test_images, dev), split.test_labels)
    metrics = {
        "rank1": score,
        "chance": 1.0 / held_out_identities,
        "rank1_untrained": rank1_untrained,
        "teacher_rank1": teacher_rank1,
        "held_out_identities": held_out_identities,
        "queries": queries,
        "train_identities": len(split.train_ids),
        "train_images": len(split.train_images),
        "seconds": round(time.time() - started, 1),
    }
    out = Path(out)
    settings = {
        "min_images_per_identity": min_images_per_identity,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "teacher": teacher.name if teacher is not None else None,
        "distill_weight": distill_weight if teacher is not None else None,
    }
    training = _training_record(arch, head, dataset_dir, alignment, data, split, settings)
    training |= {"metrics": metrics, "history": history, "veilbench_version": veilbench.__version__}
    card_dict = _checkpoint_card(arch, head, dataset_dir, out, training)
    state = {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()}
    _save_atomic({"format": CHECKPOINT_FORMAT, "state_dict": state, "card": card_dict}, out)
    log(_summary(metrics, out))
    return TrainResult(out, metrics, history)


def _summary(metrics: dict, out: Path) -> str:
    """The closing log line: held-out rank-1 beside chance, untrained and the teacher."""
    teacher = metrics["teacher_rank1"]
    return (
        f"rank-1 on {metrics['held_out_identities']} held-out identities "
        f"({metrics['queries']} queries): {metrics['rank1']:.3f} (chance "
        f"{metrics['chance']:.3f}, untrained {metrics['rank1_untrained']:.3f}"
        + (f", teacher {teacher:.3f}" if teacher is not None else "")
        + f"); checkpoint {out}"
    )
