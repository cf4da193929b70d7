"""Keyed per-photo shifts of a veil: a mitigation against adversaries that average photos.

With one fixed veil, ``k`` protected photos of a person cancel or estimate the veil (see
:mod:`veilbench.adversaries`). Here each photo gets the veil circularly shifted by its own
``(dy, dx)`` in ``[-shift, shift]``, derived from the veil's secret seed and the photo's
content, so photos no longer share one veil pixel for pixel. The veil is crafted in
expectation over random shifts (a new draw per photo per iteration), so the crafting model
should still recognise every shifted version. The holder recovers without storing anything:
he tries every shift and keeps the one whose recovery is smoothest (a wrong shift leaves the
veil's texture amplified ``(1 - alpha) / alpha`` times).
"""

from __future__ import annotations

import hashlib

import torch


def roll_each(veils: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``veils[i]`` (``N x 3 x H x W``) circularly rolled by ``shifts[i] = (dy, dx)``."""
    return torch.stack(
        [
            torch.roll(v, (int(dy), int(dx)), dims=(-2, -1))
            for v, (dy, dx) in zip(veils, shifts, strict=True)
        ]
    )


def random_shifts(n: int, shift: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random ``(dy, dx)`` pairs in ``[-shift, shift]`` (crafting: expectation over them)."""
    return torch.randint(-shift, shift + 1, (n, 2), generator=generator)


def keyed_shifts(images: torch.Tensor, shift: int, secret: int | None) -> torch.Tensor:
    """Each photo's shift: a hash of the veil's secret seed and the photo's pixels."""
    out = []
    for image in images:
        digest = hashlib.sha256(
            f"{secret}".encode() + image.detach().round().to(torch.uint8).cpu().numpy().tobytes()
        ).digest()
        out.append([d % (2 * shift + 1) - shift for d in digest[:2]])
    return torch.tensor(out, dtype=torch.long)


def recover_by_search(
    veil: torch.Tensor, protected: torch.Tensor, alpha: float, shift: int
) -> torch.Tensor:
    """Per photo, the recovery ``(x' - (1 - alpha) roll(veil)) / alpha`` over every shift with
    the least total variation (the original photo is smooth; a misplaced veil is not)."""
    best = torch.full((len(protected),), float("inf"))
    out = torch.zeros_like(protected, dtype=torch.float32)
    x = protected.float()
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            v = torch.roll(veil.float(), (dy, dx), dims=(-2, -1))
            rec = (x - (1 - alpha) * v) / alpha
            tv = (rec[..., 1:, :] - rec[..., :-1, :]).abs().flatten(1).mean(1) + (
                rec[..., :, 1:] - rec[..., :, :-1]
            ).abs().flatten(1).mean(1)
            better = tv < best
            best = torch.where(better, tv, best)
            out[better] = rec[better]
    return out.clamp(0, 255)
