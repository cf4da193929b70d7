"""Is the face hidden from people? Perception proxies beside SSIM / LPIPS.

SSIM and LPIPS can pass while a face is plainly visible (a veil started from the photo itself
leaves a visible negative of the face at SSIM 0.12). Two proxies that look for the face instead:

- **face detector**: the share of protected photos in which YuNet (the aligner's detector, at
  its score threshold) still finds a face, and how far the landmarks it finds lie from those
  it finds on the original (mean of the 5 points, over the original's inter-ocular distance);
- **simple processing**: each target's rank-1 on protected photos after what a person would try
  to see the face (auto levels, histogram equalisation, the negative), and on the originals
  after the same processing (the baseline). The processings are registered attacks, used at
  amount 1; a black-box (attacker's) rank-1 that rises after processing is a privacy loss.
"""

from __future__ import annotations

import numpy as np
import torch

from veilbench.data.align import FaceAligner
from veilbench.data.faces import EvalData
from veilbench.evaluation.protected import Protected, Targets
from veilbench.measurements.perception import FaceVisibility, Perception, ProcessedRank1
from veilbench.measurements.records import rate_of
from veilbench.registry import Entry


def _uint8(images: torch.Tensor) -> np.ndarray:
    return images.detach().clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def _landmarks(aligner: FaceAligner, image: np.ndarray) -> np.ndarray | None:
    """The 5 landmarks of the most confident face, or None when no face is found."""
    faces = aligner.detect(image)
    if not len(faces):
        return None
    return faces[int(np.argmax(faces[:, 14]))][4:14].reshape(5, 2).astype(np.float64)


def face_visibility(
    originals: torch.Tensor,
    protected: torch.Tensor,
    aligner: FaceAligner | None = None,
    identities: list[str] | None = None,
) -> FaceVisibility:
    """Face-detector rate on ``protected`` (and on ``originals``), and landmark error."""
    aligner = aligner or FaceAligner()
    found, found_clean, errors = [], [], []
    for orig, prot in zip(_uint8(originals), _uint8(protected), strict=True):
        ref, got = _landmarks(aligner, orig), _landmarks(aligner, prot)
        found.append(got is not None)
        found_clean.append(ref is not None)
        if ref is not None and got is not None:
            eyes = max(float(np.linalg.norm(ref[0] - ref[1])), 1.0)
            errors.append(float(np.linalg.norm(got - ref, axis=1).mean()) / eyes)
    n = len(originals)
    return FaceVisibility(
        detected=rate_of(found, identities),
        detected_clean=rate_of(found_clean, identities),
        landmark_error=float(np.mean(errors)) if errors else None,
        n=n,
        score_threshold=aligner.score_threshold,
    )


def processed_rank1(
    targets: Targets,
    originals: torch.Tensor,
    protected: torch.Tensor,
    truth: list[str],
    processing: Entry,
) -> ProcessedRank1:
    """Each target's rank-1 after ``processing`` (at amount 1), protected and clean."""
    process = processing.create(1.0)
    who = np.asarray(truth)
    prot = process(protected.to(targets.device))
    clean = process(originals.to(targets.device))
    return ProcessedRank1(
        protected={t: rate_of(targets.top1(t, prot) == who, truth) for t in targets.models},
        clean={t: rate_of(targets.top1(t, clean) == who, truth) for t in targets.models},
        n=len(truth),
    )


def evaluate_perception(
    targets: Targets,
    data: EvalData,
    protected: Protected,
    processings: list[Entry],
    *,
    subset: str = "held_out",
    max_images: int | None = None,
) -> Perception:
    """The perception proxies on one surrogate set's protected photos of ``subset``."""
    originals, prot, truth = [], [], []
    for p in data.probes:
        faces = p.subset(subset)
        n = len(faces) if max_images is None else min(max_images, len(faces))
        originals.append(faces.tensor()[:n])
        prot.append(protected[p.identity].subset(subset)[:n].cpu())
        truth += [p.identity] * n
    x, xp = torch.cat(originals), torch.cat(prot)
    return Perception(
        face=face_visibility(x, xp, identities=truth),
        processed={e.name: processed_rank1(targets, x, xp, truth, e) for e in processings},
    )
