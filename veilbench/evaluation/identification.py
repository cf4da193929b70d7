"""1:N identification: embeddings (cached on disk), chunked top-k search, MSR and rank-1.

Definitions (the paper's section 4.1, made exact):

- A query's **top-1 identity** is the identity of its most similar gallery image (cosine).
- **MSR** (matching success rate): the fraction of protected queries whose top-1 identity equals
  the top-1 identity of the original (unprotected) image. This is the paper's reading: does the
  FR system give the same answer for the protected photo as for the original?
- **rank-1**: the fraction of queries whose top-1 identity is the true identity. Reported beside
  MSR, because MSR penalises a protected image for being *more* correct than its original.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from veilbench.data.faces import as_nchw
from veilbench.files import atomic_write
from veilbench.models.base import FaceModel
from veilbench.weights import cache_dir


def model_fingerprint(model: FaceModel) -> str:
    """A key that changes whenever the model's weights, input handling or crop space change."""
    card = model.card.to_dict()
    payload = {
        "card": {
            k: card[k] for k in ("name", "architecture", "embedding_size", "input", "weights")
        },
        "space": [model.space.template_size, model.space.margin],
        "checkpoint": getattr(model, "checkpoint_sha256", None),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


@torch.no_grad()
def embed(
    model: FaceModel,
    images: torch.Tensor | np.ndarray,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Embeddings (N x D, float32, CPU) of canonical crops (N x 3 x S x S or N x S x S x 3).

    On CUDA each host batch is copied from pinned memory, so the copy runs asynchronously.
    """
    model.eval()
    device = torch.device(device)
    pin = device.type == "cuda" and torch.cuda.is_available()
    out = []
    for start in range(0, len(images), batch_size):
        batch = as_nchw(images[start : start + batch_size])
        if pin and batch.device.type == "cpu":
            batch = batch.pin_memory()
        out.append(model(batch.to(device, non_blocking=True)).float().cpu())
    if not out:
        return torch.zeros(0, model.card.embedding_size)
    return torch.cat(out)


class EmbeddingCache:
    """Embeddings of clean images on disk, keyed by model fingerprint and image sha256.

    Each write adds one shard file (written atomically), so concurrent or interrupted runs never
    corrupt what is there; a rerun reads every shard and embeds only what is missing.
    """

    def __init__(self, model: FaceModel, root: Path | None = None):
        self.dir = (root or cache_dir() / "embeddings") / model_fingerprint(model)
        self.index: dict[str, np.ndarray] = {}
        if self.dir.is_dir():
            for shard in sorted(self.dir.glob("*.npz")):
                try:
                    with np.load(shard) as data:
                        self.index.update(zip(data["keys"].tolist(), data["emb"], strict=True))
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                    continue  # a damaged shard only costs a recomputation

    def get_or_compute(
        self, model: FaceModel, keys: Sequence[str], images: np.ndarray, **embed_kwargs
    ) -> tuple[torch.Tensor, int]:
        """Embeddings for ``images`` (keyed by ``keys``) and how many had to be computed."""
        missing = [i for i, k in enumerate(keys) if k not in self.index]
        if missing:
            new = embed(model, images[missing], **embed_kwargs).numpy()
            self._write([keys[i] for i in missing], new)
        stacked = np.stack([self.index[k] for k in keys]) if len(keys) else np.zeros((0, 1))
        return torch.from_numpy(stacked.astype(np.float32)), len(missing)

    def _write(self, keys: list[str], emb: np.ndarray) -> None:
        # atomic_write's temp name ends in ".tmp", never "*.npz": a reader in another process
        # (a Ray worker) never globs a half-written shard.
        with atomic_write(self.dir / f"{uuid.uuid4().hex}.npz") as f:
            np.savez(f, keys=np.array(keys), emb=emb.astype(np.float32))
        self.index.update(zip(keys, emb, strict=True))


def topk_search(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    k: int = 1,
    chunk: int | None = None,
    score_budget_bytes: int = 256 << 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k cosine scores and gallery indices per query, scanning the gallery in chunks.

    Each chunk's own top-k is taken first, then merged with the running best over 2k columns,
    so memory stays at one ``queries x chunk`` score block (``score_budget_bytes`` picks the
    chunk when none is given) however large the gallery is.
    """
    q = queries.shape[0]
    if chunk is None:
        chunk = max(k, score_budget_bytes // (max(1, q) * queries.element_size()))
    best_s = torch.full((q, k), -float("inf"), dtype=queries.dtype, device=queries.device)
    best_i = torch.full((q, k), -1, dtype=torch.long, device=queries.device)
    for start in range(0, gallery.shape[0], chunk):
        scores = queries @ gallery[start : start + chunk].T
        s, i = scores.topk(min(k, scores.shape[1]), dim=1)
        all_s, all_i = torch.cat([best_s, s], dim=1), torch.cat([best_i, i + start], dim=1)
        best_s, pos = all_s.topk(k, dim=1)
        best_i = all_i.gather(1, pos)
    return best_s, best_i


class Gallery:
    """Gallery embeddings of one model with each row's identity."""

    def __init__(self, embeddings: torch.Tensor, identities: Sequence[str]):
        self.embeddings = embeddings
        self.identities = list(identities)
        self._labels = np.array(self.identities)

    def top1(self, queries: torch.Tensor) -> np.ndarray:
        """The top-1 identity of each query."""
        _, idx = topk_search(queries, self.embeddings, k=1)
        return self._labels[idx[:, 0].numpy()]


def msr(protected_top1: Sequence[str], original_top1: Sequence[str]) -> float:
    """Fraction of protected queries answered as their original was."""
    a, b = np.asarray(protected_top1), np.asarray(original_top1)
    return float((a == b).mean()) if len(a) else float("nan")


def rank1(top1: Sequence[str], truth: Sequence[str]) -> float:
    """Fraction of queries whose top-1 identity is the true one."""
    a, b = np.asarray(top1), np.asarray(truth)
    return float((a == b).mean()) if len(a) else float("nan")
