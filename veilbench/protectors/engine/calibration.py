"""Calibration: each surrogate's own scale, measured once per run on the clean crafting photos,
and the white-box criteria (match thresholds, the 1:N match) that convergence is judged by."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from veilbench.models.base import FaceModel
from veilbench.protectors.engine.config import GAP_REFERENCE, MAX_FEATURE_WEIGHT, CraftConfig
from veilbench.protectors.engine.surrogates import embed_all


@dataclass(frozen=True)
class Calibration:
    """Per surrogate, from the clean crafting photos of every identity of a run.

    Measured once per run (:meth:`EngineProtector.calibrate`) and handed to every chunk, so a
    veil does not depend on which identities were crafted alongside it: the local executor,
    Ray chunks and a rerun that isolates a failed identity all craft with the same numbers.

    ``centroids[m]`` holds each identity's clean centroid (rows in ``names`` order), the
    gallery of the 1:N match criterion; ``inter[m]`` is the mean cosine of a clean photo to the
    nearest *other* identity's centroid and ``gap[m]`` the mean own-centroid cosine minus it
    (both None with a single identity); ``weights[m]`` scales the surrogate's feature term.
    """

    names: list[str]
    centroids: list[torch.Tensor]
    inter: list[float | None]
    gap: list[float | None]
    weights: list[float]

    def to_dict(self, models: Sequence[FaceModel]) -> dict:
        return {
            m.name: {
                "inter_cosine": None if i is None else round(i, 5),
                "gap": None if g is None else round(g, 5),
                "feature_weight": round(w, 5),
            }
            for m, i, g, w in zip(models, self.inter, self.gap, self.weights, strict=True)
        }

    def to(self, device: torch.device) -> Calibration:
        return dataclasses.replace(self, centroids=[c.to(device) for c in self.centroids])


@torch.no_grad()
def calibrate(
    identities: dict[str, torch.Tensor],
    models: Sequence[FaceModel],
    nets: Sequence[torch.nn.Module],
    cfg: CraftConfig,
    device: torch.device,
) -> Calibration:
    """Each surrogate's own scale, measured on the clean crafting photos.

    Models differ in how tightly identities cluster (dlib's embeddings of different people sit
    at cosine ~0.84, SFace's near 0.2), so a fixed cosine target or one feature weight cannot
    fit all. Rounded to 5 decimals so the numbers (and the veils) do not depend on batching.
    An identity whose photos are not canonical crops or give non-finite embeddings is left out
    (its own crafting fails and names it): one broken photo must not poison every other
    identity's criteria.
    """
    size = models[0].space.size
    names, embs = [], []
    for name, imgs in identities.items():
        if imgs.ndim != 4 or not len(imgs) or tuple(imgs.shape[1:]) != (3, size, size):
            continue
        e = embed_all(nets, imgs.to(device, torch.float32), cfg.precision)
        if all(bool(torch.isfinite(x).all()) for x in e):
            names.append(name)
            embs.append(e)
    centroids, inter, gap, weights = [], [], [], []
    for m in range(len(nets)):
        per = [e[m].float() for e in embs]
        cents = torch.nn.functional.normalize(torch.stack([e.mean(0) for e in per]), dim=1)
        centroids.append(cents)
        if len(names) < 2:
            inter.append(None)
            gap.append(None)
            weights.append(1.0)
            continue
        own = torch.cat([e @ cents[k] for k, e in enumerate(per)])
        sims = [e @ cents.T for e in per]
        for k, s in enumerate(sims):
            s[:, k] = -2.0
        nearest = torch.cat([s.max(1).values for s in sims])
        i, g = round(float(nearest.mean()), 5), round(float(own.mean() - nearest.mean()), 5)
        inter.append(i)
        gap.append(g)
        w = GAP_REFERENCE / max(g, 1e-6) if cfg.balance != "none" else 1.0
        weights.append(round(min(MAX_FEATURE_WEIGHT, max(1.0, w)), 5))
    return Calibration(names, centroids, inter, gap, weights)


def thresholds(
    calib: Calibration,
    clean: Sequence[torch.Tensor],
    unit_centroids: Sequence[torch.Tensor],
    rows: Sequence[torch.Tensor],
    level: float,
) -> torch.Tensor:
    """Surrogates x units: the cosine to the unit's clean centroid that counts as a match.

    ``level`` of the way from the clean nearest-other-identity cosine to the unit's own mean
    clean cosine. With a single identity there is no other identity to measure against: the
    threshold is then the unit's lowest clean cosine (as close as its least typical photo).
    """
    out = []
    for m, (c, cents) in enumerate(zip(clean, unit_centroids, strict=True)):
        per_unit = []
        for k, r in enumerate(rows):
            cos = c[r] @ cents[k]
            if calib.inter[m] is None:
                per_unit.append(cos.min())
            else:
                per_unit.append(calib.inter[m] + level * (cos.mean() - calib.inter[m]))
        out.append(torch.stack(per_unit))
    return torch.stack(out)


def criteria(
    embs: Sequence[torch.Tensor],
    centroids: Sequence[torch.Tensor],
    calib: Calibration,
    rows: torch.Tensor,
    tau: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per surrogate x image: cosine to the unit's clean centroid, and whether the image
    matches (cosine >= threshold and above every other identity's centroid: 1:N)."""
    cos, ok = [], []
    for m, (e, cen) in enumerate(zip(embs, centroids, strict=True)):
        e = e.detach().float()
        own = (e * cen).sum(1)
        sims = e @ calib.centroids[m].T
        sims = sims.scatter(1, rows.view(-1, 1), -2.0)  # the image's own identity
        cos.append(own)
        ok.append((own >= tau[m]) & (own > sims.max(1).values))
    return torch.stack(cos), torch.stack(ok)
