"""Per-identity MSR: white-box and black-box MSR of each protected person, the worst named.

Averages hide the person a protection fails: a black-box MSR of 0.1 over ten people can be one
person matched every time. This measurement reads the per-identity rates the MSR matrix keeps
(no photo is matched again) and names, per surrogate set, the person whose black-box MSR is
highest (privacy fails most) and the one whose white-box MSR is lowest (utility fails most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)
from veilbench.measurements.msr import num
from veilbench.measurements.records import mean

if TYPE_CHECKING:  # the engine's package imports torch; its record module does not
    from veilbench.protectors.engine.convergence import ConvergenceRecord

SUBSET = "held_out"
#: Below this white-box MSR the service no longer recognises the person: worth a run warning.
SERVED = 0.5


@dataclass
class IdentityMsr:
    """One person's MSR, averaged over the white-box and over the black-box targets."""

    white_box: float | None
    black_box: float | None


@dataclass
class PerIdentity:
    """Every protected person's MSR on held-out photos, and the worst of them named."""

    identities: dict[str, IdentityMsr] = field(default_factory=dict)
    worst_black_box: str | None = None  # highest black-box MSR: privacy fails most
    worst_white_box: str | None = None  # lowest white-box MSR: utility fails most
    subset: str = SUBSET


class PerIdentityMsr(Measurement):
    name = "per_identity"
    title = "MSR per person: who the protection fails"
    description = "white-box and black-box MSR of each protected person, the worst named"
    after = ("msr",)
    record = PerIdentity
    metrics = {
        "worst_black": Metric("msr", "lower", "black-box MSR of the least protected person"),
        "worst_white": Metric("msr", "higher", "white-box MSR of the least served person"),
    }
    nav = "Per person"
    template = "_per_identity.html"
    order = 15

    def evaluate(self, ctx: Context) -> PerIdentity | None:
        from veilbench.evaluation.protected import evaluate_convergence

        record = self.derive(Where(ctx.key, ctx.protector_name, ctx.members, ctx.records))
        if record is not None and ctx.protected:
            for message in unserved_warnings(ctx.key, record, evaluate_convergence(ctx.protected)):
                ctx.warn(message)
        return record

    def derive(self, where: Where) -> PerIdentity | None:
        table = where.records.get("msr") or {}
        sides: dict[str, dict[bool, list[float | None]]] = {}
        for target, cells in table.items():
            cell = cells.get(SUBSET)
            if cell is None or cell.msr.per_identity is None:
                continue
            for identity, value in cell.msr.per_identity.items():
                sides.setdefault(identity, {True: [], False: []})[where.white_box(target)].append(
                    value
                )
        if not sides:
            return None
        people = {i: IdentityMsr(mean(s[True]), mean(s[False])) for i, s in sides.items()}
        black = {i: p.black_box for i, p in people.items() if p.black_box is not None}
        white = {i: p.white_box for i, p in people.items() if p.white_box is not None}
        return PerIdentity(
            identities=people,
            worst_black_box=max(black, key=lambda i: (black[i], i)) if black else None,
            worst_white_box=min(white, key=lambda i: (white[i], i)) if white else None,
        )

    def values(self, record: PerIdentity, where: Where) -> list[MetricValue]:
        out = []
        for side, who in (("black", record.worst_black_box), ("white", record.worst_white_box)):
            if who is not None:
                person = record.identities[who]
                value = person.black_box if side == "black" else person.white_box
                mid = f"per_identity/{where.key}/worst_{side}_box"
                out.append(MetricValue(mid, self.metrics[f"worst_{side}"], value))
        return out

    def summary(self, sets: list[Where], run: RunView) -> list[str]:
        lines = []
        for w in sets:
            r = w.records.get(self.name)
            if r is None or r.worst_black_box is None:
                continue
            worst = r.identities[r.worst_black_box]
            line = (
                f"  {w.key:<24} least protected person: {r.worst_black_box} "
                f"(black-box MSR {num(worst.black_box)})"
            )
            if r.worst_white_box is not None:
                served = r.identities[r.worst_white_box].white_box
                line += f"; least served: {r.worst_white_box} (white-box MSR {num(served)})"
            lines.append(line)
        return lines

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        tables = []
        for w in sets:
            r = w.records.get(self.name)
            if r is None:
                continue
            rows = [
                {
                    "identity": i,
                    "white_box": p.white_box,
                    "black_box": p.black_box,
                    "worst_black": i == r.worst_black_box,
                    "worst_white": i == r.worst_white_box,
                }
                for i, p in sorted(
                    r.identities.items(), key=lambda kv: (-(kv[1].black_box or 0.0), kv[0])
                )
            ]
            tables.append(
                {
                    "surrogate": w.key,
                    "rows": rows,
                    "worst_black": r.worst_black_box,
                    "worst_white": r.worst_white_box,
                }
            )
        return {"tables": tables}


def unserved_warnings(
    key: str, record: PerIdentity, veils: dict[str, ConvergenceRecord]
) -> list[str]:
    """Run warnings for people the service fails although their veil met its criteria.

    The criteria are checked while crafting against the identities crafted alongside, not
    against the gallery's other people: a veil can meet them and still be answered as someone
    else (seen with MobileFace V2 on celeb-dev). Such a white-box figure is the stopping rule's,
    and the report must not pass it off as converged.
    """
    out = []
    for identity, person in sorted(record.identities.items()):
        if person.white_box is None or person.white_box >= SERVED:
            continue
        if getattr(veils.get(identity), "converged", None) is not True:
            continue  # no veil, or an unconverged one (it has its own warning: convergence)
        out.append(
            f"veils crafted with {key}: the service's model answers {identity}'s protected "
            f"photos as {identity} only {person.white_box:.2f} of the time although the veil met "
            "its crafting criteria, which are checked against the identities crafted in the "
            "same run, not the gallery's other people; craft further with a stricter "
            "match_level (--param match_level=0.8, docs/protectors.md)"
        )
    return out
