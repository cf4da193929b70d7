"""Adversarial cloaks: a small per-photo perturbation that makes face recognition fail.

A cloak promises that the photo looks unchanged (its utility is LPIPS to the original) while
the surrogates no longer recognise it. Every cloak here is a per-photo additive perturbation
``x' = clip(x + delta, 0, 255)`` with ``|delta| <= epsilon`` (L-inf, 0-255 units, on the
canonical crop), crafted by signed-gradient steps on the crafting surrogates (an ensemble is
their mean loss):

- ``pgd`` (Madry et al., ICLR 2018): random start, push the embedding away from the clean one;
- ``mifgsm`` (Dong et al., CVPR 2018): the same loss with momentum on the L1-normalised gradient;
- ``fawkes`` (Shan et al., USENIX Security 2020, style): pull the embedding toward the centroid of
  the public-pool identity least like the person (one target per person).

The perturbation is kept as a :class:`~veilbench.veilfile.Veil` (``delta + 128``, ``alpha = 1``)
so :meth:`apply` can add it; the owner keeps the originals, so nothing is recovered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from veilbench.errors import ConfigError
from veilbench.models.base import FaceModel
from veilbench.protectors.contract import make_config
from veilbench.protectors.engine import unit_seed
from veilbench.protectors.pool import PoolConfig, PoolEmbeddings, PublicPool
from veilbench.veilfile import Veil, image_sha256

#: The stored perturbation is ``delta + OFFSET`` so it stays in a veil's [0, 255] range.
OFFSET = 128.0
#: ``loss(protected photos, photo indices) -> per-photo loss`` (minimised).
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class PGDConfig:
    """Untargeted L-inf PGD on the surrogates (FDeID's adversarial baseline)."""

    #: L-inf budget in 0-255 units on the canonical crop (the strength).
    epsilon: float = 8.0
    #: Signed-gradient steps per photo (10 keeps a 5-model lfw-dev run within its budget).
    iterations: int = 10
    #: Step size in 0-255 units (0: 2.5 epsilon / iterations, Madry et al.'s rule).
    step: float = 0.0
    #: Random start: uniform in +-start * epsilon (seeded per identity); 0 starts at the photo.
    start: float = 1.0
    #: Photos per forward pass.
    batch_size: int = 16
    #: What a run profile changes (``veilbench run --profile quick``): a few steps.
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"iterations": 3}}

    def to_dict(self) -> dict:
        return asdict(self)

    def step_size(self) -> float:
        return self.step if self.step > 0 else 2.5 * self.epsilon / max(1, self.iterations)

    def __post_init__(self) -> None:
        if not 0 <= self.epsilon < OFFSET:
            raise ConfigError(
                f"epsilon must be in [0, {OFFSET:g}) (0-255 units), got {self.epsilon}"
            )
        if self.iterations < 0 or self.step < 0 or self.batch_size < 1 or not 0 <= self.start <= 1:
            raise ConfigError(
                "iterations and step must be >= 0, start in [0, 1] and batch_size >= 1"
            )


@dataclass
class MIFGSMConfig(PGDConfig):
    """Momentum iterative FGSM (Dong et al.): no random start, momentum ``decay``."""

    iterations: int = 10
    #: Step size (0: epsilon / iterations, the paper's rule).
    step: float = 0.0
    #: The paper starts at the photo, but that is a stationary point of an untargeted feature
    #: loss (zero gradient): a small seeded nudge gets the steps going.
    start: float = 0.1
    #: Momentum decay factor mu (the paper's 1.0).
    decay: float = 1.0

    def step_size(self) -> float:
        return self.step if self.step > 0 else self.epsilon / max(1, self.iterations)


@dataclass
class FawkesConfig(PoolConfig, PGDConfig):
    """Fawkes-style feature cloak: toward the pool identity least like the person."""

    #: A targeted pull needs more steps than an untargeted push.
    iterations: int = 20
    #: Fawkes starts at the photo (a target gives a gradient there).
    start: float = 0.0
    #: Pool identities considered as targets (the least similar wins), seeded choice.
    candidates: int = 50


@dataclass
class TIPIMConfig(FawkesConfig):
    """TIP-IM-style: impersonate the pool identity nearest to the person, with momentum."""

    #: Weight of the dodging term (cosine to the photo's own clean embedding).
    dodge: float = 1.0
    #: Momentum decay factor (TIP-IM builds on MI-FGSM).
    decay: float = 1.0


class CloakProtector:
    """A per-photo perturbation in an L-inf box, crafted by signed-gradient steps."""

    name: str = ""
    config_class: ClassVar[type] = PGDConfig
    per_image = True
    secret = True
    recoverable = False
    threats: tuple[str, ...] = ("purification",)
    promise = "cloak"
    utility = "lpips"

    def __init__(self, **params: Any) -> None:
        self.config = make_config(self.config_class, params)

    def context(
        self, identities: dict[str, torch.Tensor], surrogates: list[FaceModel], device, calibration
    ) -> Any:
        """What every identity's loss shares (the run's calibration, if the cloak has one)."""
        return calibration

    def loss(
        self,
        name: str,
        images: torch.Tensor,
        surrogates: list[FaceModel],
        device: torch.device,
        context: Any,
    ) -> Loss:
        """The loss the perturbations of ``name``'s photos minimise."""
        return _away_from(surrogates, _clean(surrogates, images, device))

    def craft(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        out_dir: str | Path | None = None,
        progress: bool = True,
        calibration: Any = None,
    ) -> dict[str, Veil]:
        if not surrogates:
            raise ConfigError(f"protector {self.name} needs a face model to craft against")
        device = torch.device(device)
        context = self.context(identities, surrogates, device, calibration)
        out = {}
        for name, images in identities.items():
            gen = torch.Generator().manual_seed(unit_seed(seed, name))
            loss = self.loss(name, images, surrogates, device, context)
            delta = signed_descent(images.float().to(device), loss, self.config, gen)
            out[name] = Veil(
                veil=(delta.cpu() + OFFSET),
                alpha=1.0,
                protector=self.name,
                identity=name,
                config=self.config.to_dict(),
                surrogates=[{"name": m.name} for m in surrogates],
                image_sha256=image_sha256(images),
                stats={"final_loss": float(loss(images.to(device) + delta, None).mean())},
            )
        return out

    def apply(self, veil: Veil, images: torch.Tensor) -> torch.Tensor:
        """Add each photo's perturbation (the photos it was crafted on)."""
        delta = veil.veil.to(images.device, images.dtype) - OFFSET
        if delta.shape != images.shape:
            raise ConfigError(
                f"{self.name} perturbations are for {tuple(delta.shape)} photos, got "
                f"{tuple(images.shape)}: apply it to the photos it was crafted on"
            )
        return (images + delta).clamp(0, 255)

    def recover(self, veil: Veil, protected: torch.Tensor, gaussian_sigma: float = 0.0):
        raise ConfigError(f"protector {self.name} keeps no recovery: the owner has the originals")


@torch.no_grad()
def _clean(models: list[FaceModel], images: torch.Tensor, device: torch.device) -> list:
    """Each model's embeddings of the unprotected photos."""
    return [m(images.to(device)).detach() for m in models]


def _away_from(models: list[FaceModel], clean: list[torch.Tensor]) -> Loss:
    """Mean cosine to each photo's own clean embedding (minimised: the embedding moves away)."""

    def loss(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        return torch.stack(
            [
                F.cosine_similarity(m(x), c if rows is None else c[rows], dim=1)
                for m, c in zip(models, clean, strict=True)
            ]
        ).mean(0)

    return loss


def _toward(models: list[FaceModel], targets: list[torch.Tensor]) -> Loss:
    """Minus the mean cosine to a target embedding per model (minimised: pulled toward it)."""

    def loss(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        return -torch.stack(
            [
                F.cosine_similarity(m(x), t.expand(len(x), -1), dim=1)
                for m, t in zip(models, targets, strict=True)
            ]
        ).mean(0)

    return loss


def _impersonate_and_dodge(
    models: list[FaceModel], targets: list[torch.Tensor], clean: list[torch.Tensor], dodge: float
) -> Loss:
    """Pulled toward the target and pushed from the photo's own clean embedding (TIP-IM)."""
    toward, away = _toward(models, targets), _away_from(models, clean)

    def loss(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        return toward(x, rows) + dodge * away(x, rows)

    return loss


def signed_descent(
    images: torch.Tensor, loss: Loss, cfg: PGDConfig, gen: torch.Generator
) -> torch.Tensor:
    """The perturbation (same shape as ``images``) after ``cfg.iterations`` signed steps."""
    eps, step = cfg.epsilon, cfg.step_size()
    decay = getattr(cfg, "decay", None)
    delta = torch.zeros_like(images)
    if cfg.start > 0 and eps > 0:
        nudge = (torch.rand(images.shape, generator=gen) * 2 - 1) * cfg.start * eps
        delta = nudge.to(images.device)
    delta = (images + delta).clamp(0, 255) - images
    for start in range(0, len(images), cfg.batch_size):
        rows = torch.arange(start, min(start + cfg.batch_size, len(images)))
        x, d = images[rows], delta[rows]
        g = torch.zeros_like(d)
        for _ in range(cfg.iterations if eps > 0 else 0):
            d.requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(loss(x + d, rows).sum(), d)
            if decay is not None:  # MI-FGSM: momentum on the L1-normalised gradient
                g = decay * g + grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(
                    -1, 1, 1, 1
                )
                grad = g
            d = (d.detach() - step * grad.sign()).clamp(-eps, eps)
            d = (x + d).clamp(0, 255) - x
        delta[rows] = d.detach()
    return delta


class PGDProtector(CloakProtector):
    name = "pgd"
    config_class = PGDConfig


class MIFGSMProtector(CloakProtector):
    name = "mifgsm"
    config_class = MIFGSMConfig


class FawkesProtector(CloakProtector):
    """Fawkes-style: each person's photos pulled toward one dissimilar public-pool identity."""

    name = "fawkes"
    config_class = FawkesConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        #: A pool a run reserves from its dataset (overrides the ``pool`` folder).
        self.pool: PublicPool | None = None

    def calibrate(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
    ) -> PoolEmbeddings:
        """The pool embedded by every surrogate, once per run."""
        return PoolEmbeddings.measure(self.config, surrogates, torch.device(device), self.pool)

    def context(
        self, identities: dict[str, torch.Tensor], surrogates: list[FaceModel], device, calibration
    ) -> PoolEmbeddings:
        return calibration or self.calibrate(identities, surrogates, device=device)

    def loss(
        self,
        name: str,
        images: torch.Tensor,
        surrogates: list[FaceModel],
        device: torch.device,
        context: PoolEmbeddings,
    ) -> Loss:
        targets = choose_target(name, images, surrogates, context, self.config, device)
        return _toward(surrogates, targets)


class TIPIMProtector(FawkesProtector):
    """TIP-IM-style: each person's photos impersonate the most similar public-pool identity."""

    name = "tipim"
    config_class = TIPIMConfig

    def loss(
        self,
        name: str,
        images: torch.Tensor,
        surrogates: list[FaceModel],
        device: torch.device,
        context: PoolEmbeddings,
    ) -> Loss:
        targets = choose_target(name, images, surrogates, context, self.config, device, True)
        clean = _clean(surrogates, images, device)
        return _impersonate_and_dodge(surrogates, targets, clean, self.config.dodge)


def choose_target(
    name: str,
    images: torch.Tensor,
    surrogates: list[FaceModel],
    pool: PoolEmbeddings,
    cfg: FawkesConfig,
    device: torch.device,
    nearest: bool = False,
) -> list[torch.Tensor]:
    """Per surrogate, the centroid of the candidate pool identity least like the person
    (``nearest``: most like him, the easiest to impersonate).

    Candidates: up to ``cfg.candidates`` pool identities (seeded), never one named like the
    person; dissimilarity is the mean cosine between centroids over the surrogates.
    """
    per_model = {m.name: pool.pool.centroids(pool.embeddings[m.name]) for m in surrogates}
    names = [n for n in next(iter(per_model.values()))[0] if n != name]
    if not names:
        raise ConfigError("the public pool holds no identity to pull toward")
    gen = torch.Generator().manual_seed(cfg.pool_seed)
    pick = sorted(torch.randperm(len(names), generator=gen)[: cfg.candidates].tolist())
    candidates = [names[i] for i in pick]
    score = torch.zeros(len(candidates))
    cents = []
    for m in surrogates:
        all_names, c = per_model[m.name]
        rows = torch.tensor([all_names.index(n) for n in candidates])
        with torch.no_grad():
            own = F.normalize(m(images.to(device)).float().mean(0, keepdim=True), dim=1).cpu()
        score += (c[rows] @ own.T).squeeze(1)
        cents.append(c[rows])
    best = int(score.argmax() if nearest else score.argmin())
    return [c[best : best + 1].to(device) for c in cents]
