"""Crafting time per veil: the default schedule (until each veil converges) beside the paper's
fixed 60 steps, per surrogate, on the same photos in one process.

    python benchmarks/bench_convergence.py ../shared/data/celeb-dev [--identities 3]
                                           [--models sface,...] [--iterations N]

The probe identities and their crafting photos are those of ``veilbench run --identities N``
(seed 0); the calibration is measured once over them, as a run does. For each surrogate it
crafts every identity with the defaults and with ``until=fixed`` (same target and weights,
exactly ``iterations`` steps), and prints seconds per veil, steps, whether the criteria held and
the lowest protected-to-centroid cosine, with the time ratio. Nothing is written.
"""

from __future__ import annotations

import argparse
import time

import torch

from veilbench.config import RunConfig
from veilbench.data.faces import as_nchw, prepare_data
from veilbench.data.resolve import resolve_dataset
from veilbench.models.base import FaceSpace
from veilbench.models.loading import load_models
from veilbench.plugins import get_plugins
from veilbench.veilfile import convergence_of

SCHEDULES = {"converged (default)": {}, "fixed 60 steps": {"until": "fixed"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--identities", type=int, default=3)
    parser.add_argument("--models", default="sface,facenet,dlib_resnet")
    parser.add_argument("--iterations", type=int, default=None, help="steps of one cycle")
    parser.add_argument("--max-distractors", type=int, default=None, help="gallery photos kept")
    args = parser.parse_args()
    steps = {} if args.iterations is None else {"iterations": args.iterations}
    config = RunConfig(dataset=args.dataset)
    config.protocol.identities = args.identities
    config.protocol.max_distractors = args.max_distractors  # only the probes are crafted
    plugins = get_plugins()
    space = FaceSpace(config.template_size, config.margin)
    resolved = resolve_dataset(config.dataset, plugins.registries["datasets"], space)
    data = prepare_data(resolved.dataset, config.protocol, space)
    photos = {p.identity: as_nchw(p.craft.crops) for p in data.probes}
    entries = plugins.registries["models"].select(args.models)
    models, _ = load_models(entries, explicit=True, space=space, device=torch.device("cpu"))
    veil = plugins.registries["protectors"].get("veil")
    print(f"{resolved.dataset.name}: {', '.join(photos)}; torch threads {torch.get_num_threads()}")
    print("\n| surrogate | schedule | s / veil | steps | converged | cosine min | time ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, model in models.items():
        seconds = {}
        # The same for both schedules (it depends on the photos, the model and the balance).
        calibration = veil.create().calibrate(photos, [model])
        for label, params in SCHEDULES.items():
            protector = veil.create(**params, **steps)
            t0 = time.perf_counter()
            veils = protector.craft(photos, [model], progress=False, calibration=calibration)
            seconds[label] = (time.perf_counter() - t0) / len(veils)
            records = [convergence_of(v) for v in veils.values()]
            used = ", ".join(str(r.iterations) for r in records)
            done = sum(bool(r.converged) for r in records)
            cos = min(r.surrogates[name].cosine_min for r in records)
            ratio = seconds[label] / next(iter(seconds.values()))
            print(
                f"| {name} | {label} | {seconds[label]:.0f} | {used} | {done} / {len(records)} "
                f"| {cos:.2f} | {ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
