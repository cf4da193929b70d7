"""Wall time of ``veilbench --help`` (and ``veilbench list models``) as whole processes.

    python benchmarks/bench_cli.py [--runs 10] [--base PATH]

Each run starts a fresh Python process, imports veilbench from this checkout (or from ``--base``,
e.g. an older commit exported with ``git archive REV | tar -x -C PATH``), and exits. Runs of
the two trees alternate so a drift in machine speed hits both alike; medians are printed.
Third-party plugins are left out (``VEILBENCH_LOAD_PLUGINS=``): they may import anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "list models": ["list", "models"]}
CODE = (
    "import sys\nfrom veilbench.commands import main\n"
    "sys.argv = ['veilbench', *sys.argv[1:]]\nmain()"
)


def wall_time(tree: Path, args: list[str]) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "plugins")]),
        "VEILBENCH_LOAD_PLUGINS": "",
    }
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", CODE, *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--base", type=Path, help="another veilbench tree to compare against")
    opts = parser.parse_args()
    trees = {"this tree": REPO, **({"base": opts.base.resolve()} if opts.base else {})}
    for label, args in COMMANDS.items():
        times: dict[str, list[float]] = {name: [] for name in trees}
        for tree in trees.values():  # warm-up: file cache, .pyc files
            wall_time(tree, args)
        for _ in range(opts.runs):
            for name, tree in trees.items():
                times[name].append(wall_time(tree, args))
        cells = "  ".join(f"{n}: {statistics.median(t):.2f} s" for n, t in times.items())
        print(f"veilbench {label:<12} median of {opts.runs}  {cells}")


if __name__ == "__main__":
    main()
