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
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if epochs < 1 or batch_size < 2:
        raise ConfigError("epochs must be >= 1 and batch_size >= 2 (batch norm needs 2 images)")
    if min_images_per_identity < 2:
        raise ConfigError(
            "min_images_per_identity must be >= 2 (held-out identities need a "
            "gallery photo and a query)"
        )
    log = log or (lambda _msg: None)
    dev = pick_device(device)
    torch.manual_seed(seed)
    started = time.time()

    model = create_architecture(arch).to(dev)
    data = load_face_folder(dataset_dir, min_images_per_identity, model.space, alignment)
    n_ids = len(data.identities)
    if held_out_identities < 1 or n_ids - held_out_identities < 2:
        raise ConfigError(
            f"{n_ids} identities have >= {min_images_per_identity} images; hold out between 1 "
            f"and {n_ids - 2} of them (held_out_identities={held_out_identities})"
        )
    held = set(random.Random(seed).sample(range(n_ids), held_out_identities))
    train_ids = [i for i in range(n_ids) if i not in held]
    remap = torch.full((n_ids,), -1, dtype=torch.long)
    remap[train_ids] = torch.arange(len(train_ids))
    is_train = remap[data.labels] >= 0
    train_images, train_labels = data.images[is_train], remap[data.labels[is_train]]
    test_images, test_labels = data.images[~is_train], data.labels[~is_train]
    if len(train_images) < batch_size:
        raise ConfigError(f"only {len(train_images)} training images; use a batch size <= that")
    log(
        f"{len(train_ids)} training identities ({len(train_images)} images), "
        f"{held_out_identities} held out ({len(test_images)} images), device {dev}"
    )

    rank1_untrained, _ = rank1(_embed(model, test_images, dev), test_labels)
    embedding_size = model.card.embedding_size
    head_module = create_head(head, embedding_size, len(train_ids)).to(dev)
    params = [p for p in model.parameters() if p.requires_grad] + list(head_module.parameters())

    teacher_rank1 = None
    if teacher is not None:
        if teacher.space != model.space:
            raise ConfigError(
                f"teacher {teacher.name} works on {teacher.space}, the student on "
                f"{model.space}; build both on the same FaceSpace"
            )
        teacher = teacher.to(dev).eval()
        teacher_rank1, _ = rank1(_embed(teacher, test_images, dev), test_labels)
        t_dim = teacher.card.embedding_size
        # Sizes differ (e.g. 512 vs 128): a learnt linear map, dropped after training.
        proj = (
            nn.Linear(embedding_size, t_dim, bias=False)
            if t_dim != embedding_size
            else nn.Identity()
        ).to(dev)
        params += list(proj.parameters())
        # Teacher embeddings of each training image, unflipped and flipped, filled on first use.
        t_cache = torch.zeros(len(train_images), 2, t_dim)
        t_known = torch.zeros(len(train_images), 2, dtype=torch.bool)

    steps_per_epoch = len(train_images) // batch_size
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1
    )
    gen = torch.Generator().manual_seed(seed)
    history = []
    model.train()
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        sums = {"loss": 0.0, "head_loss": 0.0, "distill_loss": 0.0}
        order = torch.randperm(len(train_images), generator=gen)
        steps = progress_bar(range(steps_per_epoch), desc=f"epoch {epoch}", enable=progress)
        for step in steps:
            idx = order[step * batch_size : (step + 1) * batch_size]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = train_images[idx].float()
            x = torch.where(flip[:, None, None, None], x.flip(3), x).to(dev)
            y = train_labels[idx].to(dev)
            feats = model.backbone(model.preprocess(x)).flatten(1)
            head_loss = head_module.loss(feats, y)
            loss = head_loss
            if teacher is not None:
                f = flip.long()
                todo = ~t_known[idx, f]
                if todo.any():
                    with torch.no_grad():
                        t_cache[idx[todo], f[todo]] = teacher(x[todo.to(dev)]).cpu()
                    t_known[idx[todo], f[todo]] = True
                target = t_cache[idx, f].to(dev)
                distill = (1 - F.cosine_similarity(proj(feats), target, dim=1)).mean()
                loss = loss + distill_weight * distill
                sums["distill_loss"] += distill.item()
            if not torch.isfinite(loss):
                raise NumericalError(
                    f"training loss became {loss.item()} at epoch {epoch}, step {step + 1}; "
                    f"lower the learning rate (now {lr})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            sums["loss"] += loss.item()
            sums["head_loss"] += head_loss.item()
        record = {
            "epoch": epoch,
            **{k: v / steps_per_epoch for k, v in sums.items()},
            "seconds": round(time.time() - t0, 1),
        }
        if teacher is None:
            del record["distill_loss"]
        history.append(record)
        losses = " ".join(f"{k}={v:.4f}" for k, v in record.items() if k.endswith("loss"))
        log(f"epoch {epoch}/{epochs}: {losses} ({record['seconds']} s)")

    model.eval()
    score, queries = rank1(_embed(model, test_images, dev), test_labels)
    metrics = {
        "rank1": score,
        "chance": 1.0 / held_out_identities,
        "rank1_untrained": rank1_untrained,
        "teacher_rank1": teacher_rank1,
        "held_out_identities": held_out_identities,
        "queries": queries,
        "train_identities": len(train_ids),
        "train_images": len(train_images),
        "seconds": round(time.time() - started, 1),
    }
    out = Path(out)
    card = default_card(arch)
    card.name = out.stem
    card.pretrained = True
    card.licence = "trained by veilbench; the training data's terms apply"
    card.source = f"veilbench train --arch {arch} --head {head} --dataset {dataset_dir}"
    card_dict = card.to_dict()
    card_dict["training"] = {
        "arch": arch,
        "head": head,
        "dataset": str(dataset_dir),
        "alignment": alignment,
        "identities": [data.identities[i] for i in train_ids],
        "held_out": sorted(data.identities[i] for i in held),
        "min_images_per_identity": min_images_per_identity,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "teacher": teacher.name if teacher is not None else None,
        "distill_weight": distill_weight if teacher is not None else None,
        "metrics": metrics,
        "history": history,
        "veilbench_version": veilbench.__version__,
    }
    state = {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()}
    _save_atomic({"format": CHECKPOINT_FORMAT, "state_dict": state, "card": card_dict}, out)
    log(
        f"rank-1 on {held_out_identities} held-out identities ({queries} queries): "
        f"{score:.3f} (chance {metrics['chance']:.3f}, untrained {rank1_untrained:.3f}"
        + (f", teacher {teacher_rank1:.3f}" if teacher_rank1 is not None else "")
        + f"); checkpoint {out}"
    )
    return TrainResult(out, metrics, history)

