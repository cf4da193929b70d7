"""``python benchmarks/run.py --smoke``: every benchmark at tiny sizes, in seconds to minutes.

It checks that each benchmark still runs on today's API and records its figures: the suite's
registered benchmarks write their results and table rows (to a scratch file, never to
docs/benchmarks.json), and each standalone script in benchmarks/ runs once and prints (or
writes) its record. No figure is judged: on a shared CPU a timing means nothing at these sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench_common import LFW_DEV, REPO

HERE = Path(__file__).resolve().parent
CELEB_DEV = LFW_DEV.parent / "celeb-dev"

#: Standalone script -> its arguments at tiny sizes; ``{out}`` is a scratch folder. Every
#: script in benchmarks/ with a ``__main__`` must be here (a new one fails the smoke run).
SCRIPTS: dict[str, list[str]] = {
    "bench_cli.py": ["--runs", "1"],
    "bench_search.py": ["--gallery", "2000", "--queries", "10"],
    "bench_convergence.py": [
        str(LFW_DEV), "--identities", "1", "--models", "sface", "--iterations", "2",
        "--max-distractors", "5",
    ],
    "raw_photos.py": [str(CELEB_DEV), "--identities", "1"],
    "adversaries_table.py": [str(REPO / "reports" / "baseline.json")],
    # The no-dataset fallback with one model and no protection: seconds, not minutes.
    "bench_first_result.py": ["--args", "--models sface --protector none"],
    "bench_ray.py": [
        "--only", "large", "--identities", "4", "--repeats", "1", "--out", "{out}/ray.json",
    ],
}  # fmt: skip
#: Scripts whose record is a file they write (the rest print theirs).
WRITES = {"bench_ray.py": "{out}/ray.json"}
#: Scripts that need an optional dependency: skipped, and said so, where it is missing.
NEEDS = {"bench_ray.py": "ray"}


def standalone_scripts() -> list[str]:
    """The benchmark scripts meant to be run on their own (run.py and this module aside)."""
    return sorted(
        p.name
        for p in HERE.glob("*.py")
        if p.name not in ("run.py", "smoke.py") and '__name__ == "__main__"' in p.read_text()
    )


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


def run_scripts(out: Path) -> dict[str, str]:
    """Run every standalone script once; script -> problem (empty when all recorded)."""
    problems: dict[str, str] = {}
    missing = sorted(set(standalone_scripts()) - set(SCRIPTS))
    for name in missing:
        problems[name] = "no smoke arguments in benchmarks/smoke.py SCRIPTS"
    for name, args in SCRIPTS.items():
        if name in NEEDS and not _installed(NEEDS[name]):
            print(f"== {name}: skipped ({NEEDS[name]} is not installed)", file=sys.stderr)
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        argv = [sys.executable, str(HERE / name), *(a.format(out=out) for a in args)]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
        record = WRITES.get(name, "").format(out=out)
        if done.returncode:
            problems[name] = f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"
        elif record and not Path(record).is_file():
            problems[name] = f"wrote no {record}"
        elif not record and not done.stdout.strip():
            problems[name] = "printed no record"
    return problems


def check_suite(path: Path, names: list[str]) -> dict[str, str]:
    """Every registered benchmark has results and table rows in the suite's file."""
    report = json.loads(path.read_text())
    problems = {name: f"failed:\n{error}" for name, error in report["errors"].items()}
    for name in names:
        if name not in problems and not (report["results"].get(name) and report["table"].get(name)):
            problems[name] = "recorded no results or table rows"
    return problems


def smoke(run_suite: Callable[[Path], dict]) -> int:
    """``run_suite(path)`` runs the suite's benchmarks at smoke sizes and writes the report to
    ``path``; 0 when every benchmark and script ran and recorded its figures."""
    from run import _benchmarks

    missing = [str(p) for p in (LFW_DEV, CELEB_DEV) if not p.is_dir()]
    if missing:  # as the tests do without the shared data: skip, and say why
        where = ", ".join(missing)
        print(f"smoke: skipped: the benchmarks use real faces, not found at {where}")
        return 0
    names = list(_benchmarks())
    with tempfile.TemporaryDirectory(prefix="veilbench-smoke-") as tmp:
        out = Path(tmp)
        os.environ.setdefault("VEILBENCH_PROGRESS", "0")
        run_suite(out / "benchmarks.json")
        problems = check_suite(out / "benchmarks.json", names)
        problems |= run_scripts(out)
    for name, problem in problems.items():
        print(f"smoke: {name}: {problem}", file=sys.stderr)
    total = len(names) + len(SCRIPTS)
    print(f"smoke: {total - len(problems)} of {total} benchmarks ran and recorded their figures")
    return 1 if problems else 0
