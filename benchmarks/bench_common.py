"""Shared pieces of the benchmark suite: timing, real LFW crops, surrogate models, a step probe."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from veilbench.models.base import FaceModel, FaceSpace

REPO = Path(__file__).resolve().parents[1]
# The same place the tests look: ../shared/data beside the checkout, or $VEILBENCH_SHARED_DATA.
LFW_DEV = Path(os.environ.get("VEILBENCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "lfw-dev"


def median(values: list[float]) -> float:
    """Median of a non-empty list (NaN for an empty one)."""
    return statistics.median(values) if values else float("nan")


def sync() -> None:
    """Wait for queued GPU work, so a timing covers it (a no-op on CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call, queued GPU work included."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def frozen(model: FaceModel) -> FaceModel:
    """Eval mode, no parameter gradients: what crafting differentiates (the input only)."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def fwd_bwd(models: list[FaceModel], x: torch.Tensor) -> None:
    """The bare surrogate cost: forward + backward of sum(embeddings) w.r.t. the input only."""
    xi = x.detach().clone().requires_grad_(True)
    torch.autograd.grad(sum(m(xi).sum() for m in models), xi)


def mm_gflops(n: int = 2048, repeats: int = 3, device: str | torch.device = "cpu") -> float:
    """The float32 matrix-multiply rate (GFLOP/s, median of repeats, 1 warm-up) on ``device``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    return 2 * n**3 / median([timed(lambda: a @ b) for _ in range(repeats)]) / 1e9


@dataclass
class Row:
    """One printed and stored figure."""

    name: str
    value: float
    unit: str = ""
    goal: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "note": self.note,
        }


@dataclass
class Context:
    """What every benchmark shares: the mode, loaded models and prepared crops."""

    quick: bool
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: Tiny sizes that only check every benchmark runs and records its figures (``--smoke``).
    smoke: bool = False
    rows: list[Row] = field(default_factory=list)
    _models: dict[str, FaceModel] = field(default_factory=dict)

    def size(self, full: Any, quick: Any, smoke: Any) -> Any:
        """The size for this mode."""
        return smoke if self.smoke else quick if self.quick else full

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def model(self, name: str) -> FaceModel:
        """A real surrogate on the suite's device, created once (SFace's conversion takes s)."""
        if name not in self._models:
            if name == "sface":
                from veilbench.models.sface import create_sface as create
            elif name == "dlib_resnet":
                from veilbench.models.dlib_resnet import create_dlib_resnet as create
            elif name == "facenet":
                from veilbench.models.facenet import create_facenet as create
            else:
                raise KeyError(name)
            self._models[name] = frozen(create()).to(self.device)
        return self._models[name]

    def add(self, name: str, value: float, unit: str = "", goal: str = "", note: str = "") -> None:
        """Record one figure for the table and the JSON."""
        self.rows.append(Row(name, float(value), unit, goal, note))


def lfw_crops(
    identities: int,
    per_identity: int,
    skip: int = 0,
    min_photos: int = 10,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Canonical crops (float n x 3 x 144 x 144) of LFW-dev people with >= min_photos photos."""
    from veilbench.data.datasets import image_folder, prepare

    ds = image_folder(LFW_DEV, alignment="center")
    groups = [refs for refs in ds.by_identity().values() if len(refs) >= min_photos]
    chosen = groups[skip : skip + identities]
    refs = [r for g in chosen for r in g[:per_identity]]
    prepared = prepare(ds, refs, FaceSpace())
    out: dict[str, list[np.ndarray]] = {}
    for ref, crop in zip(prepared.refs, prepared.crops, strict=True):
        out.setdefault(ref.identity, []).append(crop)
    return {
        k: torch.from_numpy(np.stack(v)).permute(0, 3, 1, 2).float().to(device)
        for k, v in out.items()
    }


def lfw_gallery(n: int) -> tuple[list[str], np.ndarray]:
    """The first ``n`` usable LFW-dev crops as (file hashes, uint8 N x S x S x 3)."""
    from veilbench.data.datasets import image_folder, prepare

    ds = image_folder(LFW_DEV, alignment="center")
    prepared = prepare(ds, ds.refs[:n], FaceSpace())
    return prepared.hashes, prepared.crops


class StepProbe:
    """The engine's ``on_step`` callback (:func:`veilbench.protectors.engine.craft_batch`):
    timestamps every iteration, optionally inspects it.

    ``inspect`` receives the batch's perturbations and the iteration count; the time it takes
    is excluded from ``times``, so checkpoints do not count as crafting time.
    """

    def __init__(self, inspect: Callable[[torch.Tensor, int], None] | None = None):
        self.inspect = inspect
        self.start = time.perf_counter()
        self.paused = 0.0
        self.times: list[float] = []  # crafting seconds at the end of each iteration

    def __call__(self, done: int, veils: torch.Tensor) -> None:
        sync()  # the engine queues GPU work without waiting: time what it queued
        now = time.perf_counter()
        self.times.append(now - self.start - self.paused)
        if self.inspect is not None:
            try:
                self.inspect(veils, done)
            finally:
                self.paused += time.perf_counter() - now

    def per_iteration(self, skip: int = 1) -> list[float]:
        """Seconds of each iteration after the first (it carries the set-up), minus ``skip``."""
        diffs = [b - a for a, b in zip(self.times, self.times[1:], strict=False)]
        return diffs[skip:] if len(diffs) > skip else diffs

    def projection(self, iterations: int) -> tuple[float, float, float]:
        """(seconds per iteration, set-up seconds, projected seconds of ``iterations``)."""
        per_it = median(self.per_iteration())
        setup = max(0.0, self.times[0] - per_it)  # the first iteration carries the set-up
        return per_it, setup, setup + iterations * per_it


def machine_info() -> dict:
    """CPU model, cores, memory and library versions."""
    import os
    import platform

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "memory_gib": round(mem, 1),
        "load_average_1min_at_start": round(load, 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
