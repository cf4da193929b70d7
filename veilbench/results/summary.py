"""The console summary after ``veilbench run``: warnings, problems, then each measurement's
lines (in registration order), so the command line names no measurement."""

from __future__ import annotations

from veilbench.measurements.contract import Measurement
from veilbench.results.records import ResultsDocument

MAX_FILES = 20  # skipped files listed before "... and N more"


def problem_lines(doc: ResultsDocument) -> list[str]:
    """Warnings, skipped files, identities not crafted and measurements that failed."""
    lines = [f"WARNING: {w}" for w in doc.warnings]
    problems = [p for p in doc.problems if isinstance(p, dict)]
    files = [p for p in problems if "file" in p]
    lines += [f"skipped {p['file']}: {p.get('reason', '')}" for p in files[:MAX_FILES]]
    if len(files) > MAX_FILES:
        lines.append(f"... and {len(files) - MAX_FILES} more (results.json: problems)")
    for p in problems:
        if p.get("stage") == "craft":
            lines.append(f"not crafted {p['identity']} ({p['surrogates']}): {p['reason']}")
        elif p.get("stage") == "measure":
            where = f" ({p['surrogates']})" if p.get("surrogates") else ""
            lines.append(f"measurement {p['measurement']} failed{where}: {p['reason']}")
    return lines


def summary_lines(
    doc: ResultsDocument, measurements: dict[str, Measurement] | None = None
) -> list[str]:
    """Every registered measurement's console lines for ``doc``."""
    from veilbench.measurements import registered

    measurements = registered() if measurements is None else measurements
    sets, run = doc.derive(measurements).results.sets(), doc.run_view()
    return [line for m in measurements.values() for line in m.summary(sets, run)]
