"""Convergence: whether each veil reached its white-box criteria when it was crafted.

An unconverged veil's white-box figures measure the optimiser stopping short, not the
protection method: the MSR matrix flags them, the console says so and ``compare`` counts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veilbench.measurements.charts import number
from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)
from veilbench.measurements.msr import unconverged

if TYPE_CHECKING:  # the engine's package imports torch; its record module does not
    from veilbench.protectors.engine.convergence import ConvergenceRecord

Veils = dict[str, "ConvergenceRecord"]  # identity -> its veil's record


class Convergence(Measurement):
    name = "convergence"
    title = "Convergence"
    description = "each veil's crafting record: converged or not, steps, white-box fit"
    needs = ("veils",)

    def record_type(self) -> Any:
        from veilbench.protectors.engine.convergence import ConvergenceRecord

        return dict[str, ConvergenceRecord]

    metrics = {
        "unconverged": Metric(
            "convergence", "lower", "veils that missed their white-box criteria within the cap"
        )
    }
    nav = "Convergence"
    template = "_convergence.html"
    order = 20

    def evaluate(self, ctx: Context) -> Veils | None:
        from veilbench.evaluation.protected import evaluate_convergence

        veils = evaluate_convergence(ctx.protected)
        if warning := unconverged_warning(ctx.key, veils):
            ctx.warn(warning)
        return veils or None  # a protector with no veil to converge records nothing

    def values(self, record: Veils, where: Where) -> list[MetricValue]:
        missed = float(len(unconverged(where)))
        return [MetricValue(f"unconverged/{where.key}", self.metrics["unconverged"], missed)]

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        view = []
        for w in sets:
            veils = w.records.get(self.name) or {}
            if not veils:
                continue
            rows = [
                {
                    "identity": identity,
                    "converged": c.converged,
                    "iterations": c.iterations,
                    "cap": c.cap,
                    "until": c.until,
                    "rms": number(c.rms),
                    "fits": [
                        {
                            "model": m,
                            "cosine_min": number(f.cosine_min),
                            "threshold": number(f.threshold),
                            "matched": number(f.matched),
                        }
                        for m, f in c.surrogates.items()
                    ],
                }
                for identity, c in sorted(
                    veils.items(), key=lambda kv: (kv[1].converged is not False, kv[0])
                )
            ]
            view.append(
                {
                    "surrogate": w.key,
                    "veils": len(rows),
                    "unconverged": unconverged(w),
                    "rows": rows,
                }
            )
        return {"sets": view}

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        return old.get("convergence") or None


def unconverged_warning(key: str, records: Veils) -> str | None:
    """The run warning for veils that missed their white-box criteria, or None."""
    missed = sorted(k for k, c in records.items() if c.converged is False)
    if not missed:
        return None
    return (
        f"{len(missed)} of {len(records)} veils crafted with {key} did not converge within the "
        f"cap ({', '.join(missed)}): their white-box MSR measures the optimiser stopping short, "
        "not the protection; raise max_iterations or see docs/protectors.md"
    )
