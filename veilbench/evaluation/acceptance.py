"""Verification in a run: is a photo still *accepted as its person* at a fixed false-accept rate?

The comparison is one photo against the centroid of the person's clean enrolment embeddings
(the gallery's photos of that person). Each target's threshold at a FAR is calibrated on clean
impostor comparisons made exactly the same way: every other person's gallery photo against each
protected person's centroid. A protected photo whose cosine to its own centroid reaches the
threshold is accepted (TAR: for a white-box target the service's utility, for a black-box one
privacy lost; PSR = 1 - TAR, the protection success rate of TIP-IM, AMT-GAN and FDeID).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from veilbench.evaluation.identification import Gallery
from veilbench.measurements import SUBSETS
from veilbench.measurements.records import rate_of
from veilbench.measurements.verification import OperatingPoint, TarCell, TarPoint, Verification

#: The false-accept rates a run calibrates thresholds at.
FARS = (1e-2, 1e-3)


def far_label(far: float) -> str:
    """``1e-2`` -> ``"1e-2"``: the key of an operating point in results."""
    return f"1e-{round(-math.log10(far))}"


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


@dataclass
class Acceptance:
    """One target's enrolment centroids and thresholds: who is accepted as whom."""

    centroids: dict[str, torch.Tensor]  # identity -> unit centroid of its gallery photos
    points: dict[str, OperatingPoint]  # far label -> operating point

    def scores(self, identity: str, embeddings: torch.Tensor) -> np.ndarray:
        """Cosine of each embedding to ``identity``'s enrolment centroid."""
        return (_unit(embeddings) @ self.centroids[identity]).numpy()

    def accepted(
        self, identities: Sequence[str], embeddings: torch.Tensor
    ) -> dict[str, np.ndarray]:
        """far label -> whether each photo (of ``identities[i]``) is accepted as that person;
        absent for an FAR whose threshold could not be estimated."""
        who = np.asarray(identities)
        scores = np.full(len(who), -np.inf)  # a person without enrolment is never accepted
        for person in dict.fromkeys(identities):
            if person in self.centroids:
                rows = np.flatnonzero(who == person)
                scores[rows] = self.scores(person, embeddings[torch.from_numpy(rows)])
        return {
            label: scores >= p.threshold
            for label, p in self.points.items()
            if p.threshold is not None
        }


def threshold_at(impostor_scores: np.ndarray, far: float) -> OperatingPoint:
    """The lowest threshold that accepts at most ``far`` of the impostor scores.

    An FAR needs at least ``1 / far`` impostor comparisons (else even one accepted impostor
    would exceed it): below that no threshold is given, and the note says why.
    """
    n = len(impostor_scores)
    if n < math.ceil(1 / far):
        return OperatingPoint(
            far,
            None,
            n,
            0,
            f"{n} impostor comparisons cannot support FAR {far:g}"
            f" (needs at least {math.ceil(1 / far)})",
        )
    ranked = np.sort(impostor_scores)[::-1]
    allowed = int(math.floor(far * n))
    # Strictly above the (allowed + 1)-th highest impostor: ties there are rejected.
    threshold = float(np.nextafter(ranked[allowed], np.inf))
    accepted = int((impostor_scores >= threshold).sum())
    note = "" if allowed >= 10 else f"rests on {allowed} accepted impostor(s): a rough threshold"
    return OperatingPoint(far, threshold, n, accepted, note)


def calibrate(gallery: Gallery, people: Sequence[str], fars: Sequence[float] = FARS) -> Acceptance:
    """Centroids of ``people`` (their gallery photos) and each FAR's threshold on impostors."""
    emb = _unit(gallery.embeddings)
    who = np.asarray(gallery.identities)
    centroids, impostors = {}, []
    for person in people:
        mine = torch.from_numpy(who == person)
        if not bool(mine.any()):
            continue
        centroid = _unit(emb[mine].mean(0))
        centroids[person] = centroid
        impostors.append((emb[~mine] @ centroid).numpy())
    scores = np.concatenate(impostors) if impostors else np.zeros(0)
    return Acceptance(centroids, {far_label(f): threshold_at(scores, f) for f in fars})


def _tar_points(
    targets: Any, target: str, identities: list[str], protected: torch.Tensor, clean: torch.Tensor
) -> dict[str, TarPoint]:
    got = targets.accepted(target, identities, protected)
    base = targets.accepted(target, identities, embeddings=clean)
    return {
        far: TarPoint(rate_of(got[far], identities), rate_of(base[far], identities)) for far in got
    }


def evaluate_verification(targets: Any, data: Any, protected: Any) -> Verification:
    """TAR of one surrogate set's protected photos (and clean TAR) per target, subset and FAR."""
    record = Verification()
    for target, state in targets.states.items():
        if state.acceptance is None:
            continue
        record.thresholds[target] = dict(state.acceptance.points)
        record.cells[target] = {}
        for subset in SUBSETS:
            images = torch.cat([protected[p.identity].subset(subset) for p in data.probes])
            clean = torch.cat([state.clean_embeddings[p.identity][subset] for p in data.probes])
            truth = [p.identity for p in data.probes for _ in p.subset(subset).identities]
            record.cells[target][subset] = TarCell(
                _tar_points(targets, target, truth, images, clean), len(truth)
            )
    return record
