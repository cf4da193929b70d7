"""Adaptive adversaries: attackers who know the veil is shifted per photo and undo the shifts.

Against the keyed-shift mitigation (:mod:`veilbench.protectors.shift`) the plain algebra fails,
because photos no longer share the veil pixel for pixel. The shift range is a public setting,
so an attacker can search it as the holder does:

- ``known_pair_search``: the veil from a leaked pair, then per photo the shift whose recovery is
  smoothest (exactly the holder's search, with the leaked veil);
- ``average_aligned``: the veil's texture dominates every protected photo, so the shift between
  two of them is where their high-pass images correlate best; aligned, they average to a veil
  estimate as in ``average``.

With ``shift = 0`` (the paper's veil) they are ``known_pair`` and ``average``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from veilbench.adversaries.algebraic import Average, KnownPair
from veilbench.adversaries.contract import PublicKnowledge, ThreatModel
from veilbench.protectors.shift import recover_by_search, roll_each


def public_shift(protector: Any) -> int:
    """The per-photo shift range an attacker reads from the protector's public settings."""
    config = getattr(protector, "config", None)
    shift = config.get("shift") if isinstance(config, dict) else getattr(config, "shift", 0)
    return int(shift) if isinstance(shift, int) and shift > 0 else 0


def _high_pass(x: torch.Tensor) -> torch.Tensor:
    """The photo minus its 7 x 7 box blur: mostly the veil's texture (faces are smooth)."""
    grey = x.mean(1, keepdim=True)
    return grey - F.avg_pool2d(F.pad(grey, (3, 3, 3, 3), mode="reflect"), 7, 1)


def align_shifts(protected: torch.Tensor, shift: int) -> torch.Tensor:
    """Per photo the roll ``(dy, dx)`` that best aligns its veil with the first photo's."""
    hp = _high_pass(protected.float())
    ref = hp[:1]
    best = torch.full((len(hp),), -float("inf"))
    out = torch.zeros(len(hp), 2, dtype=torch.long)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            score = (torch.roll(hp, (dy, dx), dims=(-2, -1)) * ref).flatten(1).mean(1)
            better = score > best
            best = torch.where(better, score, best)
            out[better] = torch.tensor([dy, dx])
    return out


class _ShiftSearch:
    """Reads the protector's public shift range when fitted (an adaptive attacker's knowledge)."""

    shift = 0

    def fit(self, public: PublicKnowledge) -> None:
        super().fit(public)  # type: ignore[misc]
        self.shift = public_shift(public.protector)


class KnownPairSearch(_ShiftSearch, KnownPair):
    """``known_pair`` plus the holder's shift search, with the leaked veil."""

    name = "known_pair_search"
    threat = ThreatModel(known_pair=True)

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        if not self.shift or known is None:
            return super().reconstruct(protected, known)
        veil = self.leaked_veil(known)[0]
        return recover_by_search(veil, protected.float(), self.safe_alpha, self.shift)


class AverageAligned(_ShiftSearch, Average):
    """``average`` after aligning the photos' veils by high-pass correlation."""

    name = "average_aligned"
    threat = ThreatModel(public_photos=True)

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        if not self.shift:
            return super().reconstruct(protected, known)
        x = protected.float()
        d = align_shifts(x, self.shift)
        veil = self.estimate_veil(roll_each(x, d))  # aligned, the photos share one veil
        return self.unblend(x, roll_each(veil.expand_as(x), -d))
