"""Closed-form adversaries: the blend is linear and public, so a shared veil cancels."""

from __future__ import annotations

import torch

from veilbench.adversaries.contract import PublicKnowledge, ThreatModel


class AlgebraicAdversary:
    """Shared plumbing of the closed-form adversaries: the public ``alpha`` and a face prior."""

    name = "algebraic"
    threat = ThreatModel()

    def __init__(self) -> None:
        self.alpha = 0.2
        self.prior: torch.Tensor | None = None

    def fit(self, public: PublicKnowledge) -> None:
        self.alpha = public.alpha
        if self.threat.public_photos and len(public.photos):
            self.prior = public.photos.float().mean(0, keepdim=True)

    @property
    def safe_alpha(self) -> float:
        """``alpha`` kept below 1, so ``1 - alpha`` can divide."""
        return min(self.alpha, 1 - 1e-6)

    def unblend(self, protected: torch.Tensor, veil: torch.Tensor) -> torch.Tensor:
        """``(x' - (1 - alpha) veil) / alpha`` (eq. 14 with an estimated veil), in [0, 255]."""
        a = self.alpha
        if a >= 1:  # nothing blended in: the photos are the originals
            return protected.float()
        return ((protected.float() - (1 - a) * veil) / a).clamp(0, 255)


class KnownPair(AlgebraicAdversary):
    """One leaked (original, protected) pair gives the veil exactly (up to quantisation)."""

    name = "known_pair"
    threat = ThreatModel(known_pair=True)

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        if known is None:
            raise ValueError("known_pair needs a known (original, protected) pair")
        return self.unblend(protected, self.leaked_veil(known).mean(0, keepdim=True))

    def leaked_veil(self, known: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The veil of each leaked pair: ``(x' - alpha x) / (1 - alpha)`` (N x 3 x S x S)."""
        original, its_protected = (t.float() for t in known)
        a = self.safe_alpha
        return (its_protected - a * original) / (1 - a)


class Difference(AlgebraicAdversary):
    """Each photo minus the mean of the person's OTHER protected photos: the veil cancels.

    ``(x'_i - mean_j x'_j) / alpha = x_i - mean_j x_j``: a real face minus a face, shown around
    mid-grey. Needs nothing but ``k >= 2`` protected photos.
    """

    name = "difference"
    threat = ThreatModel()
    #: Where the difference image is centred: no face prior is known.
    grey = 127.5

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        x = protected.float()
        k = len(x)
        if k < 2:
            raise ValueError("difference needs at least two protected photos")
        others = (x.sum(0, keepdim=True) - x) / (k - 1)
        return ((x - others) / self.alpha + self.grey).clamp(0, 255)


class Average(AlgebraicAdversary):
    """Veil estimate = (mean of the k protected photos - alpha * mean public face) / (1 - alpha).

    The mean public face (other people's photos) stands in for the person's own mean face; the
    estimate's error is ``alpha / (1 - alpha) * (prior - mean(x))`` and shrinks as ``k`` grows
    (individual variation averages out, the person's own face shape does not).
    """

    name = "average"
    threat = ThreatModel(public_photos=True)

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        x = protected.float()
        return self.unblend(x, self.estimate_veil(x))

    def estimate_veil(self, x: torch.Tensor) -> torch.Tensor:
        """The veil that photos ``x`` (k x 3 x S x S, sharing it pixel for pixel) imply."""
        prior = self.prior if self.prior is not None else torch.full_like(x[:1], 127.5)
        a = self.safe_alpha
        return (x.mean(0, keepdim=True) - a * prior.to(x.device)) / (1 - a)
