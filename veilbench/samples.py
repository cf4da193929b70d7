"""The sample images of a results document, chosen so that a shared report holds no secret.

A person-wise veil is the secret that undoes protection. It must not be in a results file or
report (those are shared: attached to CI, mailed, published), and neither may an (original,
protected) pair of the same photo, because ``veil = (protected - alpha * original) / (1 - alpha)``
gives it back to within one grey level. The shareable samples therefore show, per identity:

- ``original``: the first crafting photo;
- ``recovered``: that photo recovered with the veil (shows recovery; it equals the original,
  so it adds nothing an attacker could use);
- ``protected``: the first *held-out* photo, protected: a different photo, so no pair solves
  for the veil (``held_out_protected`` is True to say so).

``secret_samples = true`` restores the same-photo triple and the veil image itself, for a
private investigation; the document then says ``samples_contain_secrets`` and the report warns.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import torch

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
    probes: Sequence[Any], protected: dict[str, dict[str, Any]], *, secrets: bool = False
) -> dict[str, dict[str, Any]]:
    """Per identity the sample thumbnails (``original``, ``protected``, ``recovered``, ``veil``).

    ``probes`` have ``identity`` and ``craft`` / ``held_out`` faces (``tensor()``); ``protected``
    is the runner's per-identity dict (``craft``, ``held_out``, ``craft_recovered``, ``veil``).
    Without ``secrets`` the protected photo is a held-out one and ``veil`` is None.
    """
    out = {}
    for p in probes:
        mine = protected[p.identity]
        held_out = len(mine["held_out"]) > 0 and not secrets
        if secrets:
            shown = mine["craft"][0]
        elif held_out:
            shown = mine["held_out"][0]
        elif len(mine["craft"]) > 1:  # no held-out photo: another crafting photo
            shown = mine["craft"][1]
        else:
            shown = None
        veil = mine["veil"] if secrets else None
        out[p.identity] = {
            "original": thumbnail(p.craft.tensor()[0]),
            "protected": thumbnail(shown) if shown is not None else None,
            "recovered": thumbnail(mine["craft_recovered"][0]),
            "veil": thumbnail(veil) if veil is not None else None,
            "protected_is_other_photo": not secrets,
        }
    return out
