"""veilbench's benchmark suite: one command, a printed table and a JSON file.

    python benchmarks/run.py [--quick] [--only NAME ...] [--device cpu|cuda|auto]
                             [--out docs/benchmarks.json]
    python benchmarks/run.py --smoke     # every benchmark at tiny sizes: does each still run?

Every figure is a ratio of two timings taken side by side in this process (medians of repeats,
warm-ups excluded), because the CPU may be shared. See docs/benchmarks.md for what each means.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from bench_common import Context, machine_info, mm_gflops

import veilbench

REPO = Path(__file__).resolve().parents[1]


def _benchmarks() -> dict[str, Callable[[Context, dict], dict]]:
    """Name -> runner; a runner also sees earlier results (protect uses the craft time)."""
    import bench_engine
    import bench_eval
    import bench_protect
    import bench_quality

    def protect(ctx: Context, done: dict) -> dict:
        craft = done.get("overhead", {}).get("projected_veil_s_default_60_iterations")
        return bench_protect.protect(ctx, craft)

    return {
        "overhead": lambda ctx, done: bench_engine.overhead(ctx),
        "batching": lambda ctx, done: bench_engine.batching(ctx),
        "cost": lambda ctx, done: bench_engine.cost_model(ctx),
        "veils_per_hour": lambda ctx, done: bench_engine.veils_per_hour(ctx),
        "quality": lambda ctx, done: bench_quality.time_to_quality(ctx),
        "protect": protect,
        "embedding": lambda ctx, done: bench_eval.embedding(ctx),
        "search": lambda ctx, done: bench_eval.search(ctx),
    }


def _versions() -> dict:
    import numpy
    import PIL

    return {
        "veilbench": veilbench.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "python": sys.version.split()[0],
    }


def _table(rows: list[dict]) -> str:
    lines = [f"{'figure':<62} {'value':>10} {'unit':<9} {'goal':<8} note", "-" * 110]
    for r in rows:
        lines.append(
            f"{r['name'][:62]:<62} {r['value']:>10.3g} {r['unit']:<9} {r['goal']:<8} {r['note']}"
        )
    return "\n".join(lines)


def run_suite(
    ctx: Context, names: list[str], out_path: Path, command: str, mode: str, keep: bool = False
) -> dict:
    """Run the named benchmarks, print their tables, write the report to ``out_path``.

    With ``keep``, an existing report there keeps the figures of benchmarks not run this time.
    """
    benches = _benchmarks()
    old = json.loads(out_path.read_text()) if keep and out_path.is_file() else {}
    report = {
        "command": command,
        "mode": mode,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": str(ctx.device),
        "machine": machine_info() | {"mm_gflops_4096": mm_gflops(4096, 2, ctx.device)},
        "versions": _versions(),
        "results": old.get("results", {}),
        "table": old.get("table", {}),
        "errors": {},
    }
    t_start = time.perf_counter()
    done: dict = {}
    for name in names:
        ctx.rows = []
        t0 = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            done[name] = benches[name](ctx, done)
        except Exception:  # one broken benchmark must not lose the others' figures
            report["errors"][name] = traceback.format_exc()
            print(report["errors"][name], file=sys.stderr)
            continue
        done[name]["seconds"] = time.perf_counter() - t0
        done[name]["measured"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")  # --only keeps older ones
        report["results"][name] = done[name]
        report["table"][name] = [r.to_dict() for r in ctx.rows]
        print(_table(report["table"][name]), file=sys.stderr, flush=True)
    report["duration_s"] = time.perf_counter() - t_start
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1, default=str, allow_nan=True) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    benches = _benchmarks()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes (~3 minutes)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes: check that every benchmark, and every standalone script in\n"
        "benchmarks/, runs and records its figures (nothing is timed against a goal)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=list(benches),
        metavar="NAME",
        help=f"run only these: {', '.join(benches)}",
    )
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (CUDA when present)")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks.json"))
    args = p.parse_args(argv)
    from veilbench.device import pick_device

    if args.smoke:
        from smoke import smoke

        ctx = Context(quick=True, smoke=True, device=pick_device(args.device))
        return smoke(lambda out: run_suite(ctx, list(benches), out, "smoke", "smoke"))
    ctx = Context(quick=args.quick, device=pick_device(args.device))
    out_path = Path(args.out)
    command = "python benchmarks/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    mode = "quick" if args.quick else "full"
    # --only updates its figures in an existing file and keeps the rest.
    names = args.only or list(benches)
    report = run_suite(ctx, names, out_path, command, mode, keep=bool(args.only))
    print(_table([r for rows in report["table"].values() for r in rows]))
    print(f"\n{report['mode']} run in {report['duration_s']:.0f}s; wrote {out_path}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
