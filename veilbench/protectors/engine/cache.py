"""The resume cache: a finished veil is written to ``out_dir`` as soon as its batch ends, and
a rerun loads it instead of crafting it again when it was crafted from the same inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veilbench.errors import VeilFileError
from veilbench.protectors.engine.convergence import from_stats
from veilbench.veilfile import SUFFIX, Veil, load_veil


def veil_path(out_dir: str | Path, identity: str) -> Path:
    """Where ``craft_many`` keeps an identity's veil: a file name safe on every filesystem."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in identity) or "_"
    return Path(out_dir) / f"{safe}{SUFFIX}"


@dataclass(frozen=True)
class CraftKey:
    """What a stored veil must share with a new run to be reused instead of crafted."""

    protector: str
    config: dict[str, Any]
    surrogates: list[dict]
    seed: int
    #: The run's calibration (per surrogate), or None when the veils do not depend on it.
    calibration: dict[str, Any] | None

    def resumed(self, out_dir: str | Path, identity: str, hashes: list[str]) -> Veil | None:
        """The stored veil of ``identity`` when it was crafted from these photos (``hashes``)
        with this key; None when there is none, it differs, or the file is unreadable (it is
        then crafted again and replaced)."""
        path = veil_path(out_dir, identity)
        if not path.is_file():
            return None
        try:
            old = load_veil(path)
        except VeilFileError:
            return None
        same = (old.protector, old.identity, old.config, old.surrogates, old.image_sha256) == (
            self.protector,
            identity,
            self.config,
            self.surrogates,
            hashes,
        )
        if not same or old.seed != self.seed:
            return None
        if self.calibration is not None:
            record = from_stats(old.stats)
            if record is None or record.calibration != self.calibration:
                return None
        return old
