"""Batch layout: where the active units' photos sit in a crafting batch, and the feature term
computed over them (units of equal size batched together, never padded)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from veilbench.protectors import losses
from veilbench.protectors.engine.config import Objective


@dataclass
class Layout:
    """Where the active units' images sit; rebuilt only when the active set changes.

    Everything the loop indexes with lives on the device, built from host-side counts, so no
    iteration has to read a device tensor back (``unique``/``nonzero`` would wait for the GPU).
    """

    units: list[int]  # active units, ascending
    lengths: list[int]  # images per active unit
    idx: torch.Tensor  # the active units, on the device
    sel: torch.Tensor  # chunk rows of their images; each unit's rows contiguous
    owner: torch.Tensor  # unit of each selected image
    xa: torch.Tensor  # the selected photos
    #: Per surrogate: ("own") the clean embeddings of the selected images, or one
    #: (positions in sel, their units' prepared clean feature sets) pair per unit size.
    targets: list[torch.Tensor | list[tuple[torch.Tensor, losses.FeatureSet]]]
    order: torch.Tensor | None  # undoes the grouping by size


def build_layout(
    obj: Objective,
    units: list[int],
    offsets: list[int],
    counts: list[int],
    x: torch.Tensor,
    owner: torch.Tensor,
    sets: torch.Tensor,
    clean: list[torch.Tensor],
) -> Layout:
    """The layout of ``units``. ``sets[i, :n]`` are the chunk rows of image i's unit (size n).

    Units of equal size share one batched subspace call; sizes are never mixed by padding,
    which would perturb the projection's rounding and so make a unit's veil depend on its
    batch-mates.
    """
    device = x.device
    lengths = [counts[k] for k in units]
    sel = torch.tensor(
        [r for k in units for r in range(offsets[k], offsets[k] + counts[k])], device=device
    )
    size_of = [n for n in lengths for _ in range(n)]
    order = None
    if obj.feature == "own":
        targets: list = [ref[sel] for ref in clean]
    else:
        groups = []
        for n in sorted(set(size_of)):
            pos = torch.tensor([j for j, m in enumerate(size_of) if m == n], device=device)
            groups.append((pos, sets[sel[pos], :n]))
        order = torch.cat([pos for pos, _ in groups]).argsort()
        targets = [
            [(pos, losses.FeatureSet.build(ref[members], obj.feature)) for pos, members in groups]
            for ref in clean
        ]
    return Layout(
        units=units,
        lengths=lengths,
        idx=torch.tensor(units, device=device),
        sel=sel,
        owner=owner[sel],
        xa=x[sel],
        targets=targets,
        order=order,
    )


def feature_loss(
    obj: Objective,
    embs: list[torch.Tensor],
    layout: Layout,
    ensemble: str,
    weights: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Per-image feature term for the layout's images, each surrogate's scaled by its per-image
    weight (see :func:`calibrate` and ``balance``), combined over surrogates."""
    terms = []
    for emb, target, w in zip(embs, layout.targets, weights, strict=True):
        if isinstance(target, torch.Tensor):  # feature == "own"
            terms.append(w * losses.feature_distance(emb, target))
            continue
        vals = [
            losses.feature_alignment_loss(emb[pos], feats, obj.feature, obj.hull_iters)
            for pos, feats in target
        ]
        terms.append(w * torch.cat(vals)[layout.order])
    total = torch.stack(terms).sum(0)
    return total / len(terms) if ensemble == "mean" else total
