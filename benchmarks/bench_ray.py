"""The Ray executor against the local one, side by side on this machine.

    python benchmarks/bench_ray.py [--repeats 3] [--identities 1000] [--out PATH]

1. Overhead: the same crafting work (real SFace, LFW-dev crops) on the local executor with one
   torch thread and on a 1-CPU Ray cluster (one worker, one thread), runs alternating.
2. Workers: the same work on a 1-CPU and a 2-CPU Ray cluster (1 vs 2 workers).
3. Simulated large run: ``--identities`` synthetic identities crafted with a RANDOM-WEIGHT tiny
   model (1 iteration: the per-veil work is tiny, so what remains is the executor's own cost),
   plus empty Ray tasks: the per-task round trip and the scheduler cost per veil.
4. Protect: one folder of real photos through ``protect_files`` locally and in Ray Data batches.

The host may be shared, so every figure is a ratio of timings taken in the same process, and
the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_common import LFW_DEV, lfw_crops, machine_info, median

from veilbench.executors import LocalExecutor
from veilbench.models.base import FaceSpace
from veilbench.plugins import get_plugins

CPU = torch.device("cpu")


def _cluster(cpus: int):
    import ray

    ray.shutdown()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    from veilbench.executors.ray import RayExecutor

    return RayExecutor()


def _craft_seconds(executor, protector, models, inputs, tmp: Path) -> float:
    folder = Path(tempfile.mkdtemp(dir=tmp))  # a fresh veil folder: nothing to resume
    t0 = time.perf_counter()
    out = executor.craft(
        protector, models, inputs, device=CPU, seed=0, veil_dir=folder, progress=False
    )
    seconds = time.perf_counter() - t0
    assert not out.failures and len(out.veils) == len(inputs), out.failures
    return seconds


def overhead_and_workers(repeats: int, tmp: Path) -> dict:
    from veilbench.models.loading import load_models

    plugins = get_plugins()
    space = FaceSpace()
    models, _ = load_models(
        plugins.registries["models"].select("sface"), explicit=True, space=space, device=CPU
    )
    sface = list(models.values())
    protector = plugins.registries["protectors"].get("veil").create(iterations=5)
    inputs = lfw_crops(identities=4, per_identity=5)
    torch.set_num_threads(1)  # what one Ray worker with one CPU gets
    local, ray1 = [], []
    executor = _cluster(1)
    _craft_seconds(executor, protector, sface, inputs, tmp)  # warm-up: workers start
    for _ in range(repeats):
        local.append(_craft_seconds(LocalExecutor(), protector, sface, inputs, tmp))
        ray1.append(_craft_seconds(executor, protector, sface, inputs, tmp))
    executor = _cluster(2)
    _craft_seconds(executor, protector, sface, inputs, tmp)
    ray2 = [_craft_seconds(executor, protector, sface, inputs, tmp) for _ in range(repeats)]
    return {
        "work": f"{len(inputs)} identities x 5 photos, sface, 5 iterations",
        "local_1_thread_s": median(local),
        "ray_1_worker_s": median(ray1),
        "ray_2_workers_s": median(ray2),
        "overhead_ray_over_local": median(ray1) / median(local),
        "speedup_2_over_1_worker": median(ray1) / median(ray2),
        "runs": {"local": local, "ray1": ray1, "ray2": ray2},
    }


def large_run(identities: int, tmp: Path) -> dict:
    import ray

    from veilbench.models.tiny import tiny_random_model

    # RANDOM WEIGHTS on 32 px crops: the per-veil work is tiny, so the executor cost shows.
    model = tiny_random_model(FaceSpace(template_size=32, margin=0), seed=1)
    protector = get_plugins().registries["protectors"].get("veil").create(iterations=1)
    gen = torch.Generator().manual_seed(0)
    size = model.space.size
    inputs = {
        f"id{i:05d}": torch.randint(0, 256, (2, 3, size, size), generator=gen).float()
        for i in range(identities)
    }
    local = _craft_seconds(LocalExecutor(), protector, [model], inputs, tmp)
    executor = _cluster(2)
    remote = _craft_seconds(executor, protector, [model], inputs, tmp)
    slots = executor.slots
    tasks = -(-identities // max(1, min(8, -(-identities // (2 * slots)))))

    @ray.remote(num_cpus=1)
    def nothing() -> None:
        return None

    ray.get([nothing.remote() for _ in range(50)])  # warm
    t0 = time.perf_counter()
    ray.get([nothing.remote() for _ in range(1000)])
    empty = (time.perf_counter() - t0) / 1000
    return {
        "identities": identities,
        "tasks": tasks,
        "local_s": local,
        "ray_2_workers_s": remote,
        "local_per_veil_ms": 1000 * local / identities,
        "ray_per_veil_ms": 1000 * remote / identities,
        "empty_task_round_trip_ms": 1000 * empty,
    }


def protect(tmp: Path, photos: int) -> dict:
    from veilbench.data.crops import canonical_crops
    from veilbench.protectors.photos import ProtectJob, protect_files
    from veilbench.veilfile import Veil

    person = sorted(p for p in LFW_DEV.iterdir() if p.is_dir())
    files = [f for d in person for f in sorted(d.glob("*.jpg"))][:photos]
    src = tmp / "photos"
    src.mkdir()
    for f in files:
        shutil.copy(f, src / f.name)
    space = FaceSpace()
    veil = Veil(
        veil=torch.randint(0, 256, (3, space.size, space.size)).float(),
        alpha=0.2,
        protector="veil",
        identity="p",
    )
    paths = sorted(src.iterdir())
    canonical_crops(paths[:2], space, "yunet")  # load the aligner once before timing

    def job(name: str) -> ProtectJob:
        out = tmp / name
        out.mkdir()
        targets = {p: out / (p.stem + ".png") for p in paths}
        return ProtectJob(veil, space, "yunet", targets, "png", 95, False)

    t0 = time.perf_counter()
    written = sum(n for n, _ in LocalExecutor().map_batches(protect_files, paths, job("l"), 32))
    local = time.perf_counter() - t0
    executor = _cluster(2)
    t0 = time.perf_counter()
    remote_written = sum(n for n, _ in executor.map_batches(protect_files, paths, job("r"), 32))
    remote = time.perf_counter() - t0
    return {
        "photos": len(paths),
        "written": [written, remote_written],
        "local_photos_per_s": len(paths) / local,
        "ray_data_2_workers_photos_per_s": len(paths) / remote,
        "local_s": local,
        "ray_s": remote,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--photos", type=int, default=128)
    parser.add_argument("--only", nargs="*", default=["overhead", "large", "protect"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("VEILBENCH_PROGRESS", "0")
    result: dict = {"machine": machine_info(), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        if "overhead" in args.only:
            result["overhead"] = overhead_and_workers(args.repeats, Path(tmp))
            print(json.dumps(result["overhead"], indent=1), file=sys.stderr)
        if "large" in args.only:
            result["large_run"] = large_run(args.identities, Path(tmp))
            print(json.dumps(result["large_run"], indent=1), file=sys.stderr)
        if "protect" in args.only:
            result["protect"] = protect(Path(tmp), args.photos)
            print(json.dumps(result["protect"], indent=1), file=sys.stderr)
    result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
