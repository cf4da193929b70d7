"""A newcomer's first result: the README's no-flag main job, timed as a whole process.

    python benchmarks/bench_first_result.py [--full] [--args "--models sface"]

Each run starts in an empty working folder with an empty cache (only the weight files linked
in, as after `veilbench weights fetch all`) and no LFW reachable, so it pays for everything a
first run pays for: generating the synthetic smoke set, preparing crops, embedding galleries,
crafting and evaluating with every real model. ``--full`` also times ``--profile full`` (the
full protocol on the same data, what the command did before the quick profile) side by side
and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = ["veilbench", "run", "--protector", "veil", "--models", "all", "--quiet"]


def first_run(extra: list[str], weights: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="veilbench-first-") as tmp:
        work, cache = Path(tmp, "work"), Path(tmp, "cache")
        (cache / "weights").mkdir(parents=True)
        work.mkdir()
        for f in weights.iterdir():
            (cache / "weights" / f.name).symlink_to(f)
        env = {
            **os.environ,
            "VEILBENCH_CACHE": str(cache),
            "VEILBENCH_PROGRESS": "0",
            # no LFW: an unroutable loopback mirror first, the default mirrors fail offline
            "VEILBENCH_LFW_MIRRORS": "http://127.0.0.1:9/lfw-deepfunneled.tgz",
        }
        env.pop("VEILBENCH_DATA", None)
        t0 = time.perf_counter()
        done = subprocess.run([*COMMAND, *extra], cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode:
            sys.exit(f"run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        doc = json.loads((work / "reports" / "latest" / "results.json").read_text())
        report = (work / "reports" / "latest" / "report.html").read_text()
    surrogates = {
        key: s["measurements"]
        for p in doc["results"]["protectors"].values()
        for key, s in p["surrogates"].items()
    }
    return {
        "wall_s": round(wall, 1),
        "profile": doc["config"]["profile_applied"],
        "models": sorted(doc["models"]),
        "surrogate_sets": len(surrogates),
        "every_section_filled": all(
            s.get("msr")
            and s.get("image_quality", {}).get("recovered")
            and s.get("robustness")
            and s.get("impersonation")
            and s.get("samples")
            for s in surrogates.values()
        ),
        "report_bytes": len(report),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--full", action="store_true", help="also time --profile full, side by side")
    p.add_argument(
        "--weights",
        type=Path,
        default=Path(os.environ.get("VEILBENCH_CACHE", Path.home() / ".cache" / "veilbench"))
        / "weights",
    )
    p.add_argument("--args", default="", help="more `veilbench run` arguments (a shorter run)")
    args = p.parse_args()
    extra = shlex.split(args.args)
    quick = first_run(extra, args.weights)
    print(f"no-flag main job (quick profile on the synthetic fallback): {json.dumps(quick)}")
    if args.full:
        full = first_run([*extra, "--profile", "full"], args.weights)
        print(f"same with --profile full:                                   {json.dumps(full)}")
        print(f"full / quick wall time: {full['wall_s'] / quick['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
