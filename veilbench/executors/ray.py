"""The Ray executor (``--executor ray``): crafting and evaluation shards as Ray tasks.

- Identities are crafted in chunks, one Ray task each, asking for one GPU when the cluster has
  GPUs (and the run is not pinned to the CPU), one CPU otherwise. The surrogates go into the
  object store once per surrogate set; each worker process deserialises them once and keeps them
  for every later chunk (:func:`_worker_models`), so a model is loaded once per worker, not once
  per task.
- Each task writes its finished veils into the run's veil folder as the local executor does
  (so the folder must be on a filesystem every node sees): a lost worker or a killed driver
  loses only unfinished chunks, and rerunning on either executor resumes.
- A worker that dies mid-task (killed, out of memory, node lost) is retried by Ray
  (``max_retries``). An identity whose own input fails (a broken photo, a non-finite gradient)
  is isolated inside its task and reported by name; a chunk that keeps killing its worker is
  split into single identities, and one that still dies is reported, never waited on forever.
"""

from __future__ import annotations

import copy
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch

from veilbench.errors import ConfigError
from veilbench.executors.base import (
    CraftOutcome,
    craft_isolating_failures,
    failure_reason,
    run_calibration,
)
from veilbench.executors.local import IDENTITY_FAILURES
from veilbench.models.base import FaceModel
from veilbench.progress import progress_enabled

try:
    import ray
    from ray.exceptions import RayError, RayTaskError
except ImportError:  # the optional extra
    raise ConfigError(
        "--executor ray needs Ray: pip install 'veilbench[ray]' (or use --executor local)"
    ) from None

T = TypeVar("T")
R = TypeVar("R")

#: How often Ray reruns a task whose worker died before giving up on it.
MAX_RETRIES = 3

# Per worker process: the surrogate set last used, keyed by its object-store id.
_MODELS: dict[str, list[FaceModel]] = {}


def _worker_models(box: list[Any]) -> list[FaceModel]:
    """The surrogates behind ``box[0]`` (an ObjectRef), fetched once per worker process."""
    key = box[0].hex()
    if key not in _MODELS:
        _MODELS.clear()  # one surrogate set at a time: a run crafts the sets one after another
        _MODELS[key] = ray.get(box[0])
    return _MODELS[key]


def _craft_task(
    protector: Any,
    box: list[Any],
    inputs: dict[str, torch.Tensor],
    device: str,
    seed: int,
    veil_dir: str | None,
    shared: dict[str, Any],
) -> CraftOutcome:
    """One chunk on a worker: craft, isolating identities whose own input fails."""
    models = _worker_models(box)

    def craft(chunk: dict[str, torch.Tensor]) -> dict:
        return protector.craft(
            chunk,
            models,
            device=torch.device(device),
            seed=seed,
            out_dir=None if veil_dir is None else Path(veil_dir),
            progress=False,
            **shared,
        )

    return craft_isolating_failures(craft, inputs, lambda e: isinstance(e, IDENTITY_FAILURES))


def _call(fn: Callable[[Any, Any], Any], shared: Any, item: Any) -> Any:
    return fn(shared, item)


class RayExecutor:
    """Runs crafting chunks and evaluation shards on a Ray cluster (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, device: str = "auto") -> None:
        self.device_setting = device
        self.started = False
        if not ray.is_initialized():
            # The workers see the same VEILBENCH_* settings (cache folder, weights) as here.
            env = {k: v for k, v in os.environ.items() if k.startswith("VEILBENCH_")}
            ray.init(
                address=address,
                runtime_env={"env_vars": env} if env else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
            self.started = True
        self._craft = ray.remote(_craft_task)
        self._call = ray.remote(_call)

    @property
    def slots(self) -> int:
        return self._resources()[2]

    def _resources(self) -> tuple[dict[str, float], str, int]:
        """Per-task resources, the device a task uses and how many tasks run at once."""
        total = ray.cluster_resources()
        gpus = int(total.get("GPU", 0))
        if gpus and self.device_setting != "cpu":
            return {"num_gpus": 1}, "cuda", gpus
        return {"num_cpus": 1}, "cpu", max(1, int(total.get("CPU", 1)))

    def craft(
        self,
        protector: Any,
        surrogates: list[FaceModel],
        inputs: dict[str, torch.Tensor],
        *,
        device: torch.device,
        seed: int,
        veil_dir: Path | None,
        progress: bool,
    ) -> CraftOutcome:
        resources, task_device, slots = self._resources()
        names = list(inputs)
        batch = int(getattr(getattr(protector, "config", None), "batch_size", 8) or 8)
        # With several slots, two chunks per slot at least, so a slow or lost chunk does not
        # leave workers idle. One slot has no one to leave idle: full batches, as locally
        # (halving them cost 1.18x the local time on 4 SFace identities, measured).
        per_slot = 2 if slots > 1 else 1
        size = max(1, min(batch, math.ceil(len(names) / (per_slot * slots))))
        box = [ray.put([_on_cpu(m) for m in surrogates])]
        # Measured once here, on every identity: each chunk crafts as one local call would.
        shared = ray.put(run_calibration(protector, surrogates, inputs, device))
        task = self._craft.options(max_retries=MAX_RETRIES, **resources)
        where = None if veil_dir is None else str(veil_dir)

        def submit(chunk: list[str]) -> Any:
            return task.remote(
                protector, box, {n: inputs[n] for n in chunk}, task_device, seed, where, shared
            )

        pending = {
            submit(names[i : i + size]): names[i : i + size] for i in range(0, len(names), size)
        }
        outcome = CraftOutcome()
        bar = _bar(len(names), f"crafting on Ray ({slots} {task_device} slots)", progress)
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                chunk = pending.pop(ref)
                try:
                    got: CraftOutcome = ray.get(ref)
                except RayTaskError:
                    raise  # a bug or a wrong setting, not one identity's input: fail the run
                except RayError as exc:  # the worker kept dying, even after Ray's retries
                    if len(chunk) > 1:
                        pending.update({submit([n]): [n] for n in chunk})
                        continue
                    got = CraftOutcome(failures={chunk[0]: failure_reason(exc)})
                outcome.veils.update(got.veils)
                outcome.failures.update(got.failures)
                bar.update(len(chunk))
        finally:
            bar.close()
        outcome.veils = {n: outcome.veils[n] for n in names if n in outcome.veils}
        outcome.failures = {n: outcome.failures[n] for n in names if n in outcome.failures}
        return outcome

    def map(self, fn: Callable[[Any, T], R], items: Iterable[T], shared: Any = None) -> list[R]:
        ref = ray.put(shared)
        task = self._call.options(max_retries=MAX_RETRIES, **self._resources()[0])
        return ray.get([task.remote(fn, ref, item) for item in items])

    def map_batches(
        self, fn: Callable[[Any, list[T]], R], items: list[T], shared: Any, batch_size: int
    ) -> list[R]:
        """Ray Data: the items stream through ``fn`` in batches on every node, results kept."""
        import logging
        import pickle

        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its INFO lines would drown ours

        shared_ref = ray.put(shared)  # once, not inside every task's closure

        def batch(rows: dict[str, Any]) -> dict[str, Any]:
            result = fn(ray.get(shared_ref), [pickle.loads(b) for b in rows["item"]])
            return {"result": [pickle.dumps(result)]}

        # Items travel pickled, so any picklable item (a Path) fits one Arrow column.
        ds = ray.data.from_items([{"item": pickle.dumps(x)} for x in items])
        out = ds.map_batches(batch, batch_size=batch_size, batch_format="numpy")
        return [pickle.loads(row["result"]) for row in out.take_all()]

    def close(self) -> None:
        if self.started:
            ray.shutdown()
            self.started = False


def _on_cpu(model: FaceModel) -> FaceModel:
    """``model`` on the CPU for the object store; a copy when it is elsewhere, since the driver
    keeps using its own on its device."""
    if all(t.device.type == "cpu" for t in model.state_dict().values()):
        return model
    return copy.deepcopy(model).to("cpu")


def _bar(total: int, desc: str, enable: bool) -> Any:
    """One driver-side bar (with ETA) across every worker."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="identity",
        file=sys.stderr,
        disable=not progress_enabled(enable),
        leave=False,
    )
