"""Crafting settings: what every engine-based protector optimises, and how (validated here).

Each protector's config class adds its own loss weights and checks them in its own
``__post_init__`` (with :func:`require_non_negative` / :func:`require_positive`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from veilbench.errors import ConfigError

_CHOICES = {
    "schedule": ("cosine", "linear", "constant"),
    "init": ("random", "x1"),
    "clip": ("veil", "blend"),
    "ensemble": ("mean", "sum"),
    "precision": ("fp32", "bf16", "fp16"),
    "subspace": ("hull", "span", "centroid"),
    "until": ("converged", "fixed"),
    "balance": ("adaptive", "gap", "none"),
}

#: The clean identity gap (mean intra- minus mean nearest-inter-identity cosine, see
#: :func:`calibrate`) at which the default weights were tuned: SFace on deep-funneled LFW. A
#: surrogate whose identities sit closer together gets its feature term scaled up by
#: ``GAP_REFERENCE / gap`` (never down), so one lambda/mu fits every model.
GAP_REFERENCE = 0.55
#: Bounds of that scale: a degenerate gap (one photo, near-duplicates) must not blow it up.
MAX_FEATURE_WEIGHT = 8.0
#: ``balance="adaptive"``: the most a unit's feature weight may be doubled to, per surrogate.
MAX_FEATURE_BOOST = 64.0


@dataclass
class CraftConfig:
    """Optimisation settings shared by every engine-based protector."""

    #: Share of the original photo in the protected one (eq. 12).
    alpha: float = 0.2
    #: t_max: sign steps per perturbation (``until="fixed"``), or the length of one step-size
    #: cycle (``until="converged"``). With SFace on LFW, SSIM(original, protected) was already
    #: 0.0035 at cosine 0.91 after 40; 60 keeps a margin at ~60% of the paper-ish 100.
    iterations: int = 60
    #: "converged": each unit runs until its convergence criteria hold on its crafting photos
    #: for every surrogate (see :func:`calibrate` and docs/protectors.md) or ``max_iterations``
    #: is reached; converged units leave the batch. "fixed": exactly ``iterations`` steps, as
    #: in the paper (for ablations); convergence is still measured and recorded.
    until: str = "converged"
    #: Cap on the steps of one unit with ``until="converged"`` (0: four ``iterations`` cycles).
    #: Past the first cycle the step schedule restarts at half the previous start each cycle.
    max_iterations: int = 0
    #: With ``until="converged"``, no unit stops before this many steps (None: one full cycle,
    #: ``iterations``): convergence extends the schedule, it never cuts it short. Stopped at
    #: step 10, when the criteria already held against the identities crafted alongside,
    #: FaceNet veils on lfw-dev kept only 0.80 / 0.70 white-box MSR against a 500-photo gallery.
    min_iterations: int | None = None
    #: Where the per-surrogate match threshold sits between the clean nearest-other-identity
    #: cosine (0) and the identity's own clean cosine to its centroid (1).
    match_level: float = 0.5
    #: "gap": scale each surrogate's feature term by GAP_REFERENCE / its clean identity gap
    #: (>= 1); "adaptive" (with ``until="converged"``): that, and at every check a unit still
    #: fails for a surrogate, that surrogate's weight for the unit doubles (up to
    #: MAX_FEATURE_BOOST): the models' pixel gradients differ in scale, so one lambda/mu cannot
    #: fit all (FaceNet on raw web photos needed up to 8x, measured); "none": the plain eq. 13
    #: weights (paper-like ablations).
    balance: str = "adaptive"
    #: First and last step size in pixel units; ``schedule`` interpolates between them.
    step_start: float = 8.0
    step_end: float = 0.5
    schedule: str = "cosine"
    #: MI-FGSM momentum decay (Algorithm 1: 1.0).
    decay: float = 1.0
    #: "random": a per-user seeded uniform noise image (the paper's "unique initial value"; far
    #: better visually); "x1": the first crafting photo, as Algorithm 1 prints.
    init: str = "random"
    #: "veil": keep the perturbation itself in [0, 255], so no blend ever clips, recovery is
    #: exact up to quantisation and the result is stored as uint8; "blend": clip only the blend.
    clip: str = "veil"
    #: Round the perturbation to integers at the end (clip="veil" only), so the saved veil is
    #: exactly the one that was evaluated.
    quantize: bool = True
    #: How the feature losses of several surrogates combine.
    ensemble: str = "mean"
    #: With ``until="fixed"`` only: stop a unit early once every crafting photo's embedding has
    #: cosine >= stop_cosine to its clean centroid (each surrogate) and the RMS target holds.
    early_stop: bool = False
    stop_cosine: float = 0.6
    #: The visual target of convergence: protected photos differ from the originals by an RMS
    #: of at least stop_rms pixel units. Criteria are checked every check_every iterations.
    stop_rms: float = 70.0
    check_every: int = 10
    #: Units (identities; photos for per-image protectors) crafted together in one batch.
    batch_size: int = 8
    #: Autocast dtype for the surrogates' forward pass; bf16/fp16 need CUDA.
    precision: str = "fp32"
    #: Run the surrogates and the image batch in channels-last memory format (faster convs on
    #: CUDA, above all with bf16/fp16). Converts the surrogates' 4-D weights in place.
    channels_last: bool = False
    #: Wrap each surrogate's forward in ``torch.compile`` (CUDA mostly; on CPU it works but the
    #: first iterations pay seconds to minutes of compilation). Results match eager mode only
    #: up to floating-point rounding, which sign steps can amplify.
    compile_models: bool = False
    #: What a run profile changes for this protector (``veilbench run --profile``): settings a
    #: user did not give take these values. Quick: half the steps of one schedule cycle.
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"iterations": 30}}

    def __post_init__(self) -> None:
        for name, options in _CHOICES.items():
            value = getattr(self, name, None)
            if value is not None and value not in options:
                raise ConfigError(f"{name} must be one of {', '.join(options)}; got {value!r}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must lie in (0, 1); got {self.alpha}")
        if self.iterations < 0 or self.batch_size < 1 or self.check_every < 1:
            raise ConfigError("iterations must be >= 0, batch_size and check_every >= 1")
        if self.max_iterations < 0 or (0 < self.max_iterations < self.iterations):
            raise ConfigError(
                f"max_iterations must be 0 (four cycles) or >= iterations ({self.iterations}); "
                f"got {self.max_iterations}"
            )
        if self.min_iterations is not None and not 0 <= self.min_iterations <= self.cap:
            raise ConfigError(
                f"min_iterations must lie in [0, {self.cap}] (the cap); got {self.min_iterations}"
            )
        if not 0 <= self.match_level <= 1:
            raise ConfigError(f"match_level must lie in [0, 1]; got {self.match_level}")
        if self.step_start <= 0 or self.step_end <= 0:
            raise ConfigError("step_start and step_end must be > 0 (pixel units)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def first_check(self) -> int:
        """The first step at which a converged unit may stop (``until="converged"``)."""
        return self.iterations if self.min_iterations is None else self.min_iterations

    @property
    def cap(self) -> int:
        """The most steps one unit may take."""
        if self.until == "fixed":
            return self.iterations
        return self.max_iterations or 4 * self.iterations

    def objective(self) -> Objective:
        """The loss terms this protector optimises."""
        raise NotImplementedError


@dataclass(frozen=True)
class Objective:
    """Which loss terms a protector uses (eq. 13 and its baselines)."""

    #: "hull" / "span": distance to the unit's identity subspace; "own": each photo's distance
    #: to its own clean embedding (V-UAP, AVIH).
    feature: str
    lambda_vis: float
    mu_var: float = 0.0
    block_size: int = 3
    block_stride: int = 1
    hull_iters: int = 50


def step_size(cfg: CraftConfig, t: int) -> float:
    """The step size at iteration ``t``: the schedule over ``cfg.iterations`` steps, repeated
    (for units still unconverged past the first cycle) from half the previous start each time."""
    cycle, t = divmod(t, max(1, cfg.iterations))
    start = max(cfg.step_end, cfg.step_start / 2**cycle)
    frac = t / max(1, cfg.iterations - 1)
    if cfg.schedule == "constant":
        return start
    if cfg.schedule == "linear":
        return start + (cfg.step_end - start) * frac
    return cfg.step_end + 0.5 * (start - cfg.step_end) * (1 + math.cos(math.pi * frac))


def require_non_negative(cfg: object, *names: str) -> None:
    """Refuse a negative value for any of the named fields of ``cfg``."""
    for name in names:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be >= 0; got {getattr(cfg, name)}")


def require_positive(cfg: object, *names: str) -> None:
    """Refuse a value below 1 for any of the named (integer) fields of ``cfg``."""
    if any(getattr(cfg, name) < 1 for name in names):
        raise ConfigError(f"{' and '.join(names)} must be >= 1")
