"""The protector contract on top of the engine: ``craft`` / ``calibrate`` / ``apply`` /
``recover`` for every engine-based protector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from veilbench.models.base import FaceModel
from veilbench.protectors.contract import make_config
from veilbench.protectors.engine.calibration import Calibration, calibrate
from veilbench.protectors.engine.config import CraftConfig
from veilbench.protectors.engine.craft import check_inputs, craft_many
from veilbench.protectors.engine.surrogates import ready
from veilbench.veilfile import Veil, apply_veil, recover_images


class EngineProtector:
    """A protector crafted by :func:`craft_many`; subclasses set name, config class, per_image."""

    name: str = ""
    per_image: bool = False
    config_class: type[CraftConfig] = CraftConfig

    def __init__(self, **params: Any) -> None:
        self.config = make_config(self.config_class, params)

    def craft(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        out_dir: str | Path | None = None,
        progress: bool = True,
        calibration: Calibration | None = None,
    ) -> dict[str, Veil]:
        """One veil per identity from its crafting photos (n x 3 x S x S canonical crops);
        ``calibration`` is the run's, from :meth:`calibrate` (default: measured on these)."""
        return craft_many(
            self.name,
            self.config,
            identities,
            surrogates,
            per_image=self.per_image,
            device=device,
            seed=seed,
            out_dir=out_dir,
            progress=progress,
            calibration=calibration,
        )

    def calibrate(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
    ) -> Calibration:
        """The surrogates' scales over every identity of a run, measured once and passed to
        each :meth:`craft` call (chunks, executors), on the CPU so it travels anywhere."""
        device = torch.device(device)
        check_inputs({}, surrogates, self.config, device)  # a bad identity fails in craft
        models, nets = ready(surrogates, self.config, device)
        return calibrate(identities, models, nets, self.config, device).to(torch.device("cpu"))

    def apply(self, veil: Veil, images: torch.Tensor) -> torch.Tensor:
        """Blend the veil into the images (eq. 12)."""
        return apply_veil(veil, images)

    def recover(
        self, veil: Veil, protected: torch.Tensor, gaussian_sigma: float = 0.0
    ) -> torch.Tensor:
        """Undo the blend (eq. 14)."""
        return recover_images(veil, protected, gaussian_sigma)
