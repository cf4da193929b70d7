"""The batched crafting engine behind every veil-style protector (Algorithm 1 of the paper).

One loop crafts many perturbations ("units") at once: the crafting photos of K units are
stacked into one batch, each photo is blended with its own unit's perturbation,

    x' = alpha * x + (1 - alpha) * delta                                  (eq. 12)
    L  = sum_i [ L_fea(x_i') - lambda * L_vis(x_i, x_i') + mu * L_var(x_i') ]   (eq. 13)

and one backward pass gives every unit's gradient (the per-unit losses are independent). Each
unit then takes its own MI-FGSM sign step (``g = decay * g + grad / ||grad||_1``;
``delta -= step * sign(g)``), with the step following a schedule from ``step_start`` to
``step_end``. A unit is a person (person-wise veils: V-UAP and the veil) or one photo (AVIH).

Determinism: each unit's random start comes from its own generator, seeded from
``(seed, unit name)``, and nothing couples units, so on CPU a unit's result does not depend on
which other units share its batch or in which order they come.

GPU: the loop itself never waits for the device. The layout of the active units (index
tensors, their photos, their clean feature sets) is built once and rebuilt only when units stop
early; a non-finite gradient is recorded on the device (the first bad iteration per unit) and
raised at the next early-stop checkpoint or after the loop, never saved. ``precision`` (bf16 /
fp16 autocast), ``channels_last`` and ``compile_models`` are the speed options.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from veilbench.errors import ConfigError, DataError, NumericalError, VeilFileError
from veilbench.models.base import FaceModel
from veilbench.progress import progress_enabled
from veilbench.protectors import losses
from veilbench.protectors.contract import make_config
from veilbench.protectors.shift import random_shifts, roll_each
from veilbench.veilfile import (
    SUFFIX,
    Veil,
    apply_veil,
    convergence_of,
    image_sha256,
    load_veil,
    recover_images,
    save_veil,
)

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
        for name in ("lambda_vis", "mu_var"):
            if getattr(self, name, 0.0) < 0:
                raise ConfigError(f"{name} must be >= 0; got {getattr(self, name)}")
        if getattr(self, "block_size", 1) < 1 or getattr(self, "block_stride", 1) < 1:
            raise ConfigError("block_size and block_stride must be >= 1")

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


def unit_seed(seed: int, name: str) -> int:
    """A 63-bit seed from (seed, name): a unit's randomness ignores batch composition."""
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


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


def describe_surrogates(models: list[FaceModel]) -> list[dict]:
    """Name and weight sha256 of each surrogate (a parameter hash when it has no weight file)."""
    out = []
    for m in models:
        entry: dict[str, Any] = {"name": m.name}
        weights = [{"name": w.get("name"), "sha256": w.get("sha256")} for w in m.card.weights]
        if weights:
            entry["weights"] = weights
        else:  # e.g. a random-weight test model: hash what it computes with
            digest = hashlib.sha256()
            for key, tensor in sorted(m.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy())
            entry["params_sha256"] = digest.hexdigest()
        out.append(entry)
    return out


@dataclass
class Crafted:
    """One finished unit: its perturbation (3 x S x S, on CPU) and crafting statistics."""

    veil: torch.Tensor
    stats: dict


def _initial(cfg: CraftConfig, images: torch.Tensor, seed: int, name: str) -> torch.Tensor:
    if cfg.init == "x1":
        return images[0].detach().to("cpu", torch.float32).clone()
    gen = torch.Generator().manual_seed(unit_seed(seed, name))
    return torch.rand(images.shape[1:], generator=gen) * 255.0


def _embed(
    models: Sequence[torch.nn.Module], x: torch.Tensor, precision: str
) -> list[torch.Tensor]:
    """Every surrogate's embeddings of ``x`` (float32), under autocast when asked."""
    if precision == "fp32":
        return [m(x) for m in models]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type="cuda", dtype=dtype):
        return [m(x).float() for m in models]


@dataclass
class _Layout:
    """Where the active units' images sit; rebuilt only when the active set changes.

    Everything the loop indexes with lives on the device, built from host-side counts, so no
    iteration has to read a device tensor back (``unique``/``nonzero`` would wait for the GPU).
    """

    units: list[int]  # active units, ascending
    lengths: list[int]  # images per active unit
    idx: torch.Tensor  # the active units, on the device
    sel: torch.Tensor  # chunk rows of their images; each unit's rows contiguous
    owner: torch.Tensor  # unit of each selected image
    xa: torch.Tensor  # the selected photos
    #: Per surrogate: ("own") the clean embeddings of the selected images, or one
    #: (positions in sel, their units' prepared clean feature sets) pair per unit size.
    targets: list[torch.Tensor | list[tuple[torch.Tensor, losses.FeatureSet]]]
    order: torch.Tensor | None  # undoes the grouping by size


def _layout(
    obj: Objective,
    units: list[int],
    offsets: list[int],
    counts: list[int],
    x: torch.Tensor,
    owner: torch.Tensor,
    sets: torch.Tensor,
    clean: list[torch.Tensor],
) -> _Layout:
    """The layout of ``units``. ``sets[i, :n]`` are the chunk rows of image i's unit (size n).

    Units of equal size share one batched subspace call; sizes are never mixed by padding,
    which would perturb the projection's rounding and so make a unit's veil depend on its
    batch-mates.
    """
    device = x.device
    lengths = [counts[k] for k in units]
    sel = torch.tensor(
        [r for k in units for r in range(offsets[k], offsets[k] + counts[k])], device=device
    )
    size_of = [n for n in lengths for _ in range(n)]
    order = None
    if obj.feature == "own":
        targets: list = [ref[sel] for ref in clean]
    else:
        groups = []
        for n in sorted(set(size_of)):
            pos = torch.tensor([j for j, m in enumerate(size_of) if m == n], device=device)
            groups.append((pos, sets[sel[pos], :n]))
        order = torch.cat([pos for pos, _ in groups]).argsort()
        targets = [
            [(pos, losses.FeatureSet.build(ref[members], obj.feature)) for pos, members in groups]
            for ref in clean
        ]
    return _Layout(
        units=units,
        lengths=lengths,
        idx=torch.tensor(units, device=device),
        sel=sel,
        owner=owner[sel],
        xa=x[sel],
        targets=targets,
        order=order,
    )


def _feature_loss(
    obj: Objective,
    embs: list[torch.Tensor],
    layout: _Layout,
    ensemble: str,
    weights: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Per-image feature term for the layout's images, each surrogate's scaled by its per-image
    weight (see :func:`calibrate` and ``balance``), combined over surrogates."""
    terms = []
    for emb, target, w in zip(embs, layout.targets, weights, strict=True):
        if isinstance(target, torch.Tensor):  # feature == "own"
            terms.append(w * losses.feature_distance(emb, target))
            continue
        vals = [
            losses.feature_alignment_loss(emb[pos], feats, obj.feature, obj.hull_iters)
            for pos, feats in target
        ]
        terms.append(w * torch.cat(vals)[layout.order])
    total = torch.stack(terms).sum(0)
    return total / len(terms) if ensemble == "mean" else total


def _raise_if_nonfinite(first_bad: torch.Tensor, never: int, names: list[str]) -> None:
    """Raise for the unit whose gradient went non-finite first (one device read)."""
    t_bad = int(first_bad.min())
    if t_bad < never:
        k = int((first_bad == t_bad).nonzero()[0, 0])
        raise NumericalError(
            f"non-finite gradient while crafting {names[k]!r} at iteration {t_bad}: check the "
            "surrogate model's output on these images, use precision=fp32 or smaller steps"
        )


def _compile_available() -> bool:
    if not callable(getattr(torch, "compile", None)):
        return False
    try:
        from torch import _dynamo

        return bool(_dynamo.is_dynamo_supported())
    except Exception:  # an unusual build or platform: treat as unavailable
        return False


def _check_compile(cfg: CraftConfig) -> None:
    if cfg.compile_models and not _compile_available():
        raise ConfigError(
            f"compile_models=true needs torch.compile, which this PyTorch ({torch.__version__}) "
            "does not support on this Python/platform; use compile_models=false"
        )


def _ready(
    surrogates: Sequence[FaceModel], cfg: CraftConfig, device: torch.device
) -> tuple[list[FaceModel], list[torch.nn.Module]]:
    """The surrogates on ``device`` in eval mode, and what the crafting loop calls for them."""
    models = [m.to(device).eval() for m in surrogates]
    return models, _surrogate_nets(models, cfg)


def _surrogate_nets(models: Sequence[FaceModel], cfg: CraftConfig) -> list[torch.nn.Module]:
    """What the loop calls: the surrogates, channels-last and/or compiled as ``cfg`` asks."""
    nets: list[torch.nn.Module] = []
    for m in models:
        if cfg.channels_last:
            m.to(memory_format=torch.channels_last)  # in place; a no-op the second time
        nets.append(torch.compile(m) if cfg.compile_models else m)
    return nets


@dataclass(frozen=True)
class Calibration:
    """Per surrogate, from the clean crafting photos of every identity of a run.

    Measured once per run (:meth:`EngineProtector.calibrate`) and handed to every chunk, so a
    veil does not depend on which identities were crafted alongside it: the local executor,
    Ray chunks and a rerun that isolates a failed identity all craft with the same numbers.

    ``centroids[m]`` holds each identity's clean centroid (rows in ``names`` order), the
    gallery of the 1:N match criterion; ``inter[m]`` is the mean cosine of a clean photo to the
    nearest *other* identity's centroid and ``gap[m]`` the mean own-centroid cosine minus it
    (both None with a single identity); ``weights[m]`` scales the surrogate's feature term.
    """

    names: list[str]
    centroids: list[torch.Tensor]
    inter: list[float | None]
    gap: list[float | None]
    weights: list[float]

    def to_dict(self, models: Sequence[FaceModel]) -> dict:
        return {
            m.name: {
                "inter_cosine": None if i is None else round(i, 5),
                "gap": None if g is None else round(g, 5),
                "feature_weight": round(w, 5),
            }
            for m, i, g, w in zip(models, self.inter, self.gap, self.weights, strict=True)
        }

    def to(self, device: torch.device) -> Calibration:
        return dataclasses.replace(self, centroids=[c.to(device) for c in self.centroids])


@torch.no_grad()
def calibrate(
    identities: dict[str, torch.Tensor],
    models: Sequence[FaceModel],
    nets: Sequence[torch.nn.Module],
    cfg: CraftConfig,
    device: torch.device,
) -> Calibration:
    """Each surrogate's own scale, measured on the clean crafting photos.

    Models differ in how tightly identities cluster (dlib's embeddings of different people sit
    at cosine ~0.84, SFace's near 0.2), so a fixed cosine target or one feature weight cannot
    fit all. Rounded to 5 decimals so the numbers (and the veils) do not depend on batching.
    An identity whose photos are not canonical crops or give non-finite embeddings is left out
    (its own crafting fails and names it): one broken photo must not poison every other
    identity's criteria.
    """
    size = models[0].space.size
    names, embs = [], []
    for name, imgs in identities.items():
        if imgs.ndim != 4 or not len(imgs) or tuple(imgs.shape[1:]) != (3, size, size):
            continue
        e = _embed(nets, imgs.to(device, torch.float32), cfg.precision)
        if all(bool(torch.isfinite(x).all()) for x in e):
            names.append(name)
            embs.append(e)
    centroids, inter, gap, weights = [], [], [], []
    for m in range(len(nets)):
        per = [e[m].float() for e in embs]
        cents = torch.nn.functional.normalize(torch.stack([e.mean(0) for e in per]), dim=1)
        centroids.append(cents)
        if len(names) < 2:
            inter.append(None)
            gap.append(None)
            weights.append(1.0)
            continue
        own = torch.cat([e @ cents[k] for k, e in enumerate(per)])
        sims = [e @ cents.T for e in per]
        for k, s in enumerate(sims):
            s[:, k] = -2.0
        nearest = torch.cat([s.max(1).values for s in sims])
        i, g = round(float(nearest.mean()), 5), round(float(own.mean() - nearest.mean()), 5)
        inter.append(i)
        gap.append(g)
        w = GAP_REFERENCE / max(g, 1e-6) if cfg.balance != "none" else 1.0
        weights.append(round(min(MAX_FEATURE_WEIGHT, max(1.0, w)), 5))
    return Calibration(names, centroids, inter, gap, weights)


def _thresholds(
    calib: Calibration,
    clean: Sequence[torch.Tensor],
    unit_centroids: Sequence[torch.Tensor],
    rows: Sequence[torch.Tensor],
    level: float,
) -> torch.Tensor:
    """Surrogates x units: the cosine to the unit's clean centroid that counts as a match.

    ``level`` of the way from the clean nearest-other-identity cosine to the unit's own mean
    clean cosine. With a single identity there is no other identity to measure against: the
    threshold is then the unit's lowest clean cosine (as close as its least typical photo).
    """
    out = []
    for m, (c, cents) in enumerate(zip(clean, unit_centroids, strict=True)):
        per_unit = []
        for k, r in enumerate(rows):
            cos = c[r] @ cents[k]
            if calib.inter[m] is None:
                per_unit.append(cos.min())
            else:
                per_unit.append(calib.inter[m] + level * (cos.mean() - calib.inter[m]))
        out.append(torch.stack(per_unit))
    return torch.stack(out)


def _criteria(
    embs: Sequence[torch.Tensor],
    centroids: Sequence[torch.Tensor],
    calib: Calibration,
    rows: torch.Tensor,
    tau: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per surrogate x image: cosine to the unit's clean centroid, and whether the image
    matches (cosine >= threshold and above every other identity's centroid: 1:N)."""
    cos, ok = [], []
    for m, (e, cen) in enumerate(zip(embs, centroids, strict=True)):
        e = e.detach().float()
        own = (e * cen).sum(1)
        sims = e @ calib.centroids[m].T
        sims = sims.scatter(1, rows.view(-1, 1), -2.0)  # the image's own identity
        cos.append(own)
        ok.append((own >= tau[m]) & (own > sims.max(1).values))
    return torch.stack(cos), torch.stack(ok)


def _craft_chunk(
    names: list[str],
    images: list[torch.Tensor],
    models: list[FaceModel],
    cfg: CraftConfig,
    *,
    device: torch.device,
    seed: int,
    bar: tqdm,
    nets: list[torch.nn.Module],
    calib: Calibration,
    identity_rows: list[int],
) -> list[Crafted]:
    """Craft one batch of units together; see the module docstring.

    ``nets`` are what the loop calls for ``models`` (see :func:`_surrogate_nets`);
    ``identity_rows[k]`` is unit k's identity's row in ``calib`` (its own row in the 1:N match).
    """
    t0 = time.perf_counter()
    obj = cfg.objective()
    a = cfg.alpha
    x = torch.cat(images).to(device, torch.float32)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    counts = [len(im) for im in images]
    offsets = [sum(counts[:k]) for k in range(len(counts))]
    owner = torch.repeat_interleave(torch.arange(len(names)), torch.tensor(counts)).to(device)
    rows = [torch.arange(o, o + n, device=device) for o, n in zip(offsets, counts, strict=True)]
    longest = max(counts)
    sets = torch.stack([torch.cat([r, r[:1].expand(longest - len(r))]) for r in rows])[owner]
    with torch.no_grad():
        clean = [e.detach() for e in _embed(nets, x, cfg.precision)]
    for m, e in zip(models, clean, strict=True):
        bad = (~torch.isfinite(e).all(1)).nonzero()
        if bad.numel():
            raise NumericalError(
                f"surrogate {m.name} gives non-finite embeddings for the crafting photos of "
                f"{names[int(owner[bad[0, 0]])]!r}: check the model and that the photos are "
                "canonical crops in [0, 255]"
            )
    # Each unit's clean centroid per surrogate, and each image's copy (for the criteria).
    unit_cents = [
        torch.nn.functional.normalize(torch.stack([c[r].mean(0) for r in rows]), dim=1)
        for c in clean
    ]
    centroids = [c[owner] for c in unit_cents]
    tau = _thresholds(calib, clean, unit_cents, rows, cfg.match_level)  # surrogates x units
    img_rows = torch.tensor(identity_rows, device=device)[owner]
    veils = torch.stack(
        [_initial(cfg, im, seed, n) for n, im in zip(names, images, strict=True)]
    ).to(device)
    if cfg.channels_last:
        veils = veils.contiguous(memory_format=torch.channels_last)
    momentum = torch.zeros_like(veils)
    cap = cfg.cap
    iterations = [cap] * len(names)
    converge = cfg.until == "converged"
    checking = converge or cfg.early_stop
    adaptive = converge and cfg.balance == "adaptive"
    # Surrogates x units: each unit's own multiplier of each surrogate's feature weight.
    boost = torch.ones(len(models), len(names), device=device)
    base = torch.tensor(calib.weights, device=device).view(-1, 1)
    # First iteration with a non-finite gradient, per unit (``never`` if none), kept on the
    # device: read at checkpoints and after the loop, not every iteration.
    never = cap
    first_bad = torch.full((len(names),), never, dtype=torch.long, device=device)
    scale = 1024.0 if cfg.precision == "fp16" else 1.0  # fp16 loss scaling; sign steps ignore it
    units = list(range(len(names)))
    shift = int(getattr(cfg, "shift", 0))
    shifts_gen = torch.Generator().manual_seed(seed)
    layout: _Layout | None = None
    steps = 0
    for t in range(cap):
        if not units:
            break
        if layout is None:
            layout = _layout(obj, units, offsets, counts, x, owner, sets, clean)
        v = veils.clone().requires_grad_(True)
        xa = layout.xa
        v_each = v[layout.owner]
        if shift:  # expectation over keyed shifts: a fresh shift per photo per iteration
            v_each = roll_each(v_each, random_shifts(len(v_each), shift, shifts_gen))
        xp = a * xa + (1 - a) * v_each
        if cfg.clip == "blend":
            xp = xp.clamp(0, 255)
        if cfg.channels_last:
            xp = xp.contiguous(memory_format=torch.channels_last)
        embs = _embed(nets, xp, cfg.precision)
        loss = _feature_loss(obj, embs, layout, cfg.ensemble, (base * boost)[:, layout.owner])
        loss = loss - obj.lambda_vis * losses.visual_loss(xa, xp)
        if obj.mu_var:
            loss = loss + obj.mu_var * losses.block_variance(xp, obj.block_size, obj.block_stride)
        (grad,) = torch.autograd.grad(loss.sum() * scale, v)
        idx = layout.idx
        grad = grad[idx]
        finite = torch.isfinite(grad).flatten(1).all(1)
        seen = first_bad[idx]
        first_bad[idx] = torch.where(finite, seen, seen.clamp(max=t))
        # A unit with a bad gradient takes no step from it, so no NaN enters later iterations;
        # the whole chunk raises at the next checkpoint or after the loop.
        grad = grad.masked_fill(~finite.view(-1, 1, 1, 1), 0.0)
        may_stop = t >= cfg.first_check or not converge
        if checking and t > 0 and t % cfg.check_every == 0 and (may_stop or adaptive):
            _raise_if_nonfinite(first_bad, never, names)
            with torch.no_grad():
                sel = layout.sel
                cos, ok = _criteria(
                    embs, [c[sel] for c in centroids], calib, img_rows[sel], tau[:, owner[sel]]
                )
                if not converge:  # the fixed schedule's optional early stop: one cosine
                    ok = cos >= cfg.stop_cosine
                rms = (xp.detach() - xa).pow(2).flatten(1).mean(1).sqrt()
                met, start = [], 0
                for k, n in zip(layout.units, layout.lengths, strict=True):
                    fits = ok[:, start : start + n].all(1)  # per surrogate
                    if adaptive:
                        boost[:, k] = torch.where(
                            fits, boost[:, k], (2 * boost[:, k]).clamp(max=MAX_FEATURE_BOOST)
                        )
                    far = rms[start : start + n].mean() >= cfg.stop_rms
                    met.append(fits.all() & far & may_stop)
                    start += n
            done = torch.stack(met).tolist()  # one device read per checkpoint
            if any(done):
                keep = [j for j, d in enumerate(done) if not d]
                for j, k in enumerate(layout.units):
                    if done[j]:
                        iterations[k] = t
                pick = torch.tensor(keep, dtype=torch.long, device=device)
                idx, grad = idx[pick], grad[pick]
                units = [layout.units[j] for j in keep]
                layout = None  # rebuilt for the remaining units next iteration
        if idx.numel():
            l1 = grad.abs().flatten(1).sum(1).clamp_min(1e-30).view(-1, 1, 1, 1)
            momentum[idx] = cfg.decay * momentum[idx] + grad / l1
            veils[idx] -= step_size(cfg, t) * momentum[idx].sign()
            if cfg.clip == "veil":
                veils.clamp_(0, 255)
        bar.update(1)
        steps += 1
    bar.update(cap - steps)  # units that stopped early leave the bar short
    _raise_if_nonfinite(first_bad, never, names)
    if cfg.clip == "veil" and cfg.quantize:
        veils = veils.round()
    # The record describes the veil as saved (quantised), whatever the checkpoints saw.
    with torch.no_grad():
        xp = (a * x + (1 - a) * veils[owner]).clamp(0, 255)
        embs = _embed(nets, xp, cfg.precision)
        cos, ok = _criteria(embs, centroids, calib, img_rows, tau[:, owner])
        rms = (xp - x).pow(2).flatten(1).mean(1).sqrt()
    seconds = (time.perf_counter() - t0) / len(names)
    out = []
    for k in range(len(names)):
        r = rows[k]
        per = {
            m.name: {
                "cosine_min": round(float(cos[j, r].min()), 5),
                "cosine_mean": round(float(cos[j, r].mean()), 5),
                "threshold": round(float(tau[j, k]), 5),
                "matched": round(float(ok[j, r].float().mean()), 5),
                "feature_weight": round(float(base[j, 0] * boost[j, k]), 5),
            }
            for j, m in enumerate(models)
        }
        unit_rms = float(rms[r].mean())
        converged = bool(ok[:, r].all()) and unit_rms >= cfg.stop_rms
        out.append(
            Crafted(
                veils[k].detach().cpu().contiguous(),
                {
                    "iterations": iterations[k],
                    "stopped_early": iterations[k] < cap,
                    "seconds": round(seconds, 3),
                    "cosine_to_centroid_min": round(float(cos[:, r].min(0).values.min()), 5),
                    "cosine_to_centroid_mean": round(float(cos[:, r].min(0).values.mean()), 5),
                    "rms": round(unit_rms, 3),
                    "convergence": {
                        "converged": converged,
                        "iterations": iterations[k],
                        "cap": cap,
                        "until": cfg.until,
                        "rms": round(unit_rms, 3),
                        "rms_target": cfg.stop_rms,
                        "surrogates": per,
                        "calibration": calib.to_dict(models),
                    },
                },
            )
        )
    return out


def _merge_convergence(parts: list[dict]) -> dict:
    """One per-image veil's record: converged when every photo's perturbation converged."""
    first = parts[0]
    per = {
        name: {
            "cosine_min": min(p["surrogates"][name]["cosine_min"] for p in parts),
            "cosine_mean": round(
                sum(p["surrogates"][name]["cosine_mean"] for p in parts) / len(parts), 5
            ),
            "threshold": max(p["surrogates"][name]["threshold"] for p in parts),
            "matched": round(sum(p["surrogates"][name]["matched"] for p in parts) / len(parts), 5),
        }
        for name in first["surrogates"]
    }
    return {
        **first,
        "converged": all(p["converged"] for p in parts),
        "iterations": max(p["iterations"] for p in parts),
        "rms": round(sum(p["rms"] for p in parts) / len(parts), 3),
        "surrogates": per,
    }


def veil_path(out_dir: str | Path, identity: str) -> Path:
    """Where ``craft_many`` keeps an identity's veil: a file name safe on every filesystem."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in identity) or "_"
    return Path(out_dir) / f"{safe}{SUFFIX}"


def _check_inputs(
    identities: dict[str, torch.Tensor], surrogates: list[FaceModel], cfg: CraftConfig, device
) -> None:
    if not surrogates:
        raise ConfigError("crafting needs at least one surrogate FaceModel")
    size = surrogates[0].space.size
    for name, imgs in identities.items():
        if imgs.ndim != 4 or imgs.shape[0] < 1 or tuple(imgs.shape[1:]) != (3, size, size):
            raise DataError(
                f"identity {name!r}: crafting photos must be n x 3 x {size} x {size} canonical "
                f"crops (n >= 1), got {tuple(imgs.shape)}; align them first"
            )
    if cfg.precision != "fp32" and torch.device(device).type != "cuda":
        raise ConfigError(f"precision={cfg.precision} needs a CUDA device; use precision=fp32")
    _check_compile(cfg)


def craft_many(
    protector: str,
    cfg: CraftConfig,
    identities: dict[str, torch.Tensor],
    surrogates: list[FaceModel],
    *,
    per_image: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    on_done: Callable[[str, Veil], None] | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Veil]:
    """Craft a veil for every identity, ``cfg.batch_size`` units per batched loop.

    ``calibration`` is the run's (:func:`calibrate` over every identity of the run); without it,
    it is measured on ``identities``.

    With ``out_dir``, an identity whose ``.veil`` file already exists there and was crafted from
    the same photos, config and surrogates is loaded instead of crafted (resume), and each new
    veil is written as soon as its batch finishes. ``per_image`` crafts one perturbation per
    photo (AVIH); the identity's veil then holds all of them.
    """
    _check_inputs(identities, surrogates, cfg, device)
    device = torch.device(device)
    models, nets = _ready(surrogates, cfg, device)
    described = describe_surrogates(surrogates)
    config = cfg.to_dict()
    results: dict[str, Veil] = {}
    hashes = {name: image_sha256(imgs) for name, imgs in identities.items()}
    # The surrogates' scales, from every identity of the run (not per batch, so a veil does
    # not depend on its batch-mates); a resumed veil must have been crafted with the same.
    calib = (calibration or calibrate(identities, models, nets, cfg, device)).to(device)
    missing = [n for n in identities if n not in calib.names]
    if missing:
        raise NumericalError(  # calibrate() leaves such identities out
            f"identity {missing[0]!r}: its crafting photos give non-finite embeddings"
        )
    scales = calib.to_dict(models)
    # Only balanced or converging veils depend on the calibration (the fixed schedule with
    # balance=none does not), so only they must have been crafted with the same one.
    coupled = cfg.balance != "none" or cfg.until == "converged"
    todo = []
    for name in identities:
        if out_dir is not None and veil_path(out_dir, name).is_file():
            try:
                old = load_veil(veil_path(out_dir, name))
            except VeilFileError:
                old = None  # a corrupt or foreign file is crafted again and replaced
            if (
                old is not None
                and (
                    old.protector,
                    old.identity,
                    old.config,
                    old.surrogates,
                    old.image_sha256,
                    old.seed,
                )
                == (protector, name, config, described, hashes[name], seed)
                and (not coupled or (convergence_of(old) or {}).get("calibration") == scales)
            ):
                results[name] = old
                continue
        todo.append(name)
    units = [
        (f"{name}/{i:04d}" if per_image else name, name, imgs[i : i + 1] if per_image else imgs)
        for name in todo
        for i in (range(len(identities[name])) if per_image else [0])
        for imgs in [identities[name]]
    ]
    chunks = [units[i : i + cfg.batch_size] for i in range(0, len(units), cfg.batch_size)]
    row_of = {name: i for i, name in enumerate(calib.names)}
    parts: dict[str, list[Crafted]] = {name: [] for name in todo}
    needed = {name: len(identities[name]) if per_image else 1 for name in todo}
    with tqdm(
        total=len(chunks) * cfg.cap,
        disable=not progress_enabled(progress),
        desc=f"{protector}: {len(todo)} to craft, {len(results)} resumed",
        unit="it",
    ) as bar:
        for chunk in chunks:
            crafted = _craft_chunk(
                [u[0] for u in chunk],
                [u[2] for u in chunk],
                models,
                cfg,
                device=device,
                seed=seed,
                bar=bar,
                nets=nets,
                calib=calib,
                identity_rows=[row_of[u[1]] for u in chunk],
            )
            for (_, name, _), c in zip(chunk, crafted, strict=True):
                parts[name].append(c)
                if len(parts[name]) < needed[name]:
                    continue
                got = parts.pop(name)
                stats = (
                    {
                        "seconds": round(sum(p.stats["seconds"] for p in got), 3),
                        "per_image": [p.stats for p in got],
                        "convergence": _merge_convergence([p.stats["convergence"] for p in got]),
                    }
                    if per_image
                    else got[0].stats
                )
                veil = Veil(
                    veil=torch.stack([p.veil for p in got]) if per_image else got[0].veil,
                    alpha=cfg.alpha,
                    protector=protector,
                    identity=name,
                    config=config,
                    surrogates=described,
                    image_sha256=hashes[name],
                    clip=cfg.clip,
                    stats=stats,
                    seed=seed,
                )
                if out_dir is not None:
                    save_veil(veil_path(out_dir, name), veil)
                if on_done is not None:
                    on_done(name, veil)
                results[name] = veil
    return {name: results[name] for name in identities}


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
        _check_inputs({}, surrogates, self.config, device)  # a bad identity fails in craft
        models, nets = _ready(surrogates, self.config, device)
        return calibrate(identities, models, nets, self.config, device).to(torch.device("cpu"))

    def apply(self, veil: Veil, images: torch.Tensor) -> torch.Tensor:
        """Blend the veil into the images (eq. 12)."""
        return apply_veil(veil, images)

    def recover(
        self, veil: Veil, protected: torch.Tensor, gaussian_sigma: float = 0.0
    ) -> torch.Tensor:
        """Undo the blend (eq. 14)."""
        return recover_images(veil, protected, gaussian_sigma)
