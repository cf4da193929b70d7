"""The privacy summary: the service's rates (white-box targets) beside an attacker's
(black-box targets) and the best adversary's, per subset; derived from other measurements.

The paper reads high white-box MSR as utility (the service that crafted the veil still
identifies the person) and low black-box MSR as privacy (an attacker's model fails).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilbench.measurements import SUBSETS
from veilbench.measurements.adversaries import best_adversary
from veilbench.measurements.contract import Context, Measurement, RunView, Where
from veilbench.measurements.msr import num, unconverged
from veilbench.measurements.records import mean


@dataclass
class PrivacyRates:
    """The service's rates (white-box targets) beside an attacker's (black-box targets):
    means over targets of the MSR matrix's rates."""

    service_msr: float | None
    service_rank1: float | None
    attacker_msr: float | None
    attacker_rank1: float | None
    attacker_models: list[str]
    #: The best adversary's reconstructions: black-box rank-1 (re-identified by an attacker's
    #: model), and which adversary at which k that was. None: no adversary ran.
    reconstruction_rank1: float | None = None
    best_adversary: str | None = None
    #: Veils of this set that missed their white-box criteria: when > 0, ``service_*`` partly
    #: measures the optimiser stopping short, not the protection (see ``convergence``).
    unconverged_veils: int = 0


Summary = dict[str, PrivacyRates]  # subset -> rates


class Privacy(Measurement):
    name = "privacy"
    title = "Privacy summary"
    description = "service (white-box) and attacker (black-box) MSR, best adversary: derived"
    after = ("msr",)
    record = Summary
    order = 35

    def evaluate(self, ctx: Context) -> Summary | None:
        return self.derive(Where(ctx.key, ctx.protector_name, ctx.members, ctx.records))

    def derive(self, where: Where) -> Summary | None:
        table = where.records.get("msr")
        if not table:
            return None
        best = best_adversary(where.records.get("adversaries"), where)
        out = {}
        for subset in SUBSETS:
            white = [c[subset] for t, c in table.items() if where.white_box(t) and subset in c]
            black = [c[subset] for t, c in table.items() if not where.white_box(t) and subset in c]
            out[subset] = PrivacyRates(
                service_msr=mean(c.msr.value for c in white),
                service_rank1=mean(c.rank1_protected.value for c in white),
                attacker_msr=mean(c.msr.value for c in black),
                attacker_rank1=mean(c.rank1_protected.value for c in black),
                attacker_models=sorted(t for t in table if not where.white_box(t)),
                reconstruction_rank1=None
                if best is None
                else mean(c.rank1.value for t, c in best.reid.items() if not where.white_box(t)),
                best_adversary=None if best is None else f"{best.adversary} k={best.k}",
                unconverged_veils=len(unconverged(where)),
            )
        return out

    def summary(self, sets: list[Where], run: RunView) -> list[str]:
        lines = []
        for w in sets:
            r = (w.records.get(self.name) or {}).get("held_out")
            if r is None:
                continue
            lines.append(
                f"  {w.key:<24} service MSR {num(r.service_msr)} | attacker MSR "
                f"{num(r.attacker_msr)} ({', '.join(r.attacker_models) or 'no other model'})"
            )
            if r.best_adversary is not None:
                lines.append(
                    f"  {w.key:<24} under attack: {r.best_adversary} reconstructions "
                    f"re-identified by the attacker's model: rank-1 {num(r.reconstruction_rank1)}"
                )
        return lines

    def headline(self, sets: list[Where], run: RunView) -> list[dict[str, Any]]:
        held = [r for w in sets if (r := (w.records.get(self.name) or {}).get("held_out"))]
        white = [r.service_msr for r in held if r.service_msr is not None]
        black = [r.attacker_msr for r in held if r.attacker_msr is not None]
        missed = sum(r.unconverged_veils for r in held)
        attacked = [r for r in held if r.reconstruction_rank1 is not None]
        which = sorted({str(r.best_adversary) for r in attacked})
        white_rates, black_rates, attack_rates = [], [], []
        for w in sets:  # the cells behind each mean, for its interval
            for t, cells in (w.records.get("msr") or {}).items():
                if "held_out" in cells:
                    side = white_rates if w.white_box(t) else black_rates
                    side.append(cells["held_out"].msr)
            best = best_adversary(w.records.get("adversaries"), w)
            if best is not None:
                attack_rates += [c.rank1 for t, c in best.reid.items() if not w.white_box(t)]
        return [
            {
                "label": "White-box MSR, held-out",
                "value": mean(white),
                "pairs": len(white),
                "rates": white_rates,
                "note": "the crafting model still recognises the protected face (higher = utility)"
                + (
                    f"; includes {missed} unconverged veil{'s' if missed != 1 else ''}: "
                    "see Convergence"
                    if missed
                    else ""
                ),
            },
            {
                "label": "Black-box MSR, held-out",
                "value": mean(black),
                "pairs": len(black),
                "rates": black_rates,
                "note": "other models still match it (lower = privacy)"
                if black
                else "needs at least two models",
            },
            {
                "label": "Re-identified after attack",
                "value": mean(r.reconstruction_rank1 for r in attacked),
                "pairs": len(attacked),
                "rates": attack_rates,
                "note": f"best adversary ({', '.join(which)}): an attacker's model re-identifies "
                "its reconstructions (higher = privacy lost)"
                if attacked
                else "no adversary ran (--adversaries) or no attacker's model",
                "alarm": True,
            },
        ]
