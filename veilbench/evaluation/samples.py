"""The sample images of a results document, chosen so that a shared report holds no secret.

A person-wise veil is the secret that undoes protection. It must not be in a results file or
report (those are shared: attached to CI, mailed, published), and neither may an (original,
protected) pair of the same photo, because ``veil = (protected - alpha * original) / (1 - alpha)``
gives it back to within one grey level. The shareable samples therefore show, per identity:

- ``original``: the first crafting photo;
- ``recovered``: that photo recovered with the veil (shows recovery; it equals the original,
  so it adds nothing an attacker could use);
- ``protected``: the first *held-out* photo, protected: a different photo, so no pair solves
  for the veil.

``secret_samples = true`` restores the same-photo triple and the veil image itself, for a
private investigation; the document then says ``samples_contain_secrets`` and the report warns.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import torch

from veilbench.data.faces import ProbeFaces
from veilbench.protectors.apply import ProtectedFaces

SECRETS_WARNING = (
    "secret_samples = true: this results file and its report hold every veil and same-photo "
    "(original, protected) pairs; anyone who sees them can undo the protection: do not share them"
)


def thumbnail(image: torch.Tensor) -> str:
    """A lossless PNG data URI of one 3 x S x S image (for the report's image grid)."""
    from PIL import Image

    array = image.clamp(0, 255).round().byte().permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def shareable_samples(
    probes: Sequence[ProbeFaces], protected: dict[str, ProtectedFaces], *, secrets: bool = False
) -> dict[str, dict[str, str]]:
    """Per identity the sample thumbnails: ``original``, ``protected``, ``recovered`` (when the
    protector can be undone) and, only with ``secrets``, ``veil``.

    Without ``secrets`` the protected photo is a held-out one (another crafting photo when there
    is none) and the veil is left out.
    """
    out = {}
    for p in probes:
        mine = protected[p.identity]
        shown = shown_protected(mine, secrets)
        images = {
            "original": thumbnail(p.craft.tensor()[0]),
            "protected": thumbnail(shown) if shown is not None else None,
            "recovered": thumbnail(mine.craft_recovered[0])
            if mine.craft_recovered is not None
            else None,
            "veil": thumbnail(image)
            if secrets and (image := veil_image(mine.veil)) is not None
            else None,
        }
        out[p.identity] = {k: v for k, v in images.items() if v is not None}
    return out


def shown_protected(mine: ProtectedFaces, secrets: bool) -> torch.Tensor | None:
    """The protected photo a sample shows beside the first crafting photo: that same photo only
    with ``secrets``, else the first held-out one (another crafting photo when there is none)."""
    if secrets:
        return mine.craft[0]
    if len(mine.held_out) > 0:
        return mine.held_out[0]
    return mine.craft[1] if len(mine.craft) > 1 else None


def veil_image(veil: Any) -> torch.Tensor | None:
    """The veil as one 3 x S x S image, when the protector has one (per-image ones do not)."""
    image = veil if isinstance(veil, torch.Tensor) else getattr(veil, "veil", None)
    return image.detach().cpu() if image is not None and image.ndim == 3 else None
