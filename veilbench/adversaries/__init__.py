"""Adversaries: attackers who try to undo a protection and get the original photos back.

The blend ``x' = alpha * x + (1 - alpha) * veil`` is public and one veil protects every photo of
a person, so an attacker who sees several protected photos of one person need not fool a face
recogniser at all: he can cancel the veil. Each adversary declares its threat model (what it is
given, :class:`ThreatModel`) and maps ``k`` protected photos of one person to ``k``
reconstructions of their originals (``N x 3 x S x S`` floats in [0, 255]).

- ``known_pair``: one leaked (original, protected) pair of another photo of the same person
  gives the veil exactly: ``veil = (p - alpha x) / (1 - alpha)``.
- ``difference``: nothing but the ``k`` photos. ``x'_i - x'_j = alpha (x_i - x_j)``: the veil
  cancels, leaving a difference of two real faces; shown around mid-grey.
- ``average``: the ``k`` photos plus public photos of OTHER people. The mean protected photo is
  ``alpha mean(x) + (1 - alpha) veil``; with the public mean face as a prior for ``mean(x)`` it
  estimates the veil, and every photo follows.
- ``inversion`` (:mod:`veilbench.adversaries.inversion`): a small image-to-image network the
  attacker trains on other people's photos protected with veils he crafts himself.
"""

from veilbench.adversaries.contract import (
    DEFAULT_KS,
    Adversary,
    PublicKnowledge,
    ThreatModel,
    public_alpha,
)

__all__ = ["DEFAULT_KS", "Adversary", "PublicKnowledge", "ThreatModel", "public_alpha"]
