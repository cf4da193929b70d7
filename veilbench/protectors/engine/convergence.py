"""The convergence record: did a veil reach its white-box criteria when it was crafted?

The engine writes one per veil into the veil file's statistics (``stats["convergence"]``);
the veil file, the evaluation and the ``craft`` command read it back through these types. No
torch here: the results records import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class SurrogateFit:
    """How one veil's protected crafting photos sit for one surrogate (white-box criteria)."""

    cosine_min: float | None  # lowest cosine of a protected crafting photo to the clean centroid
    cosine_mean: float | None
    threshold: float | None  # the cosine that counts as a match (calibrated per model)
    matched: float | None  # share of protected crafting photos that meet the 1:N match


@dataclass
class ConvergenceRecord:
    """Whether one identity's veil reached its white-box criteria when crafted.

    An unconverged veil's white-box figures measure the optimiser stopping short, not the
    protection method: the report and ``compare`` keep them apart from privacy results.
    """

    converged: bool | None
    iterations: int | None  # sign steps used
    cap: int | None  # the most it was allowed
    until: str | None = None  # "converged" (stops when the criteria hold) or "fixed"
    rms: float | None = None  # mean pixel RMS protected vs original (the visual target)
    surrogates: dict[str, SurrogateFit] = field(default_factory=dict)


@dataclass
class VeilConvergence(ConvergenceRecord):
    """The record as the engine stores it in a veil: also what the criteria were measured
    against (the visual target, each surrogate's feature weight and the run's calibration),
    which a resumed veil must share."""

    rms_target: float | None = None
    #: surrogate -> the feature weight the unit ended with (calibrated, times its boost).
    feature_weights: dict[str, float] = field(default_factory=dict)
    #: surrogate -> its calibration (``inter_cosine``, ``gap``, ``feature_weight``).
    calibration: dict[str, dict[str, Any]] | None = None

    def record(self) -> ConvergenceRecord:
        """The results' record: the fields every reader of a run needs."""
        base = {f.name: getattr(self, f.name) for f in fields(ConvergenceRecord)}
        return ConvergenceRecord(**base)

    def to_dict(self) -> dict[str, Any]:
        """The layout of ``stats["convergence"]`` in a veil file."""
        surrogates = {}
        for name, fit in self.surrogates.items():
            entry: dict[str, Any] = {
                "cosine_min": fit.cosine_min,
                "cosine_mean": fit.cosine_mean,
                "threshold": fit.threshold,
                "matched": fit.matched,
            }
            if name in self.feature_weights:
                entry["feature_weight"] = self.feature_weights[name]
            surrogates[name] = entry
        out: dict[str, Any] = {
            "converged": self.converged,
            "iterations": self.iterations,
            "cap": self.cap,
            "until": self.until,
            "rms": self.rms,
            "rms_target": self.rms_target,
            "surrogates": surrogates,
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VeilConvergence:
        """Read a stored record; keys missing from older veil files read as None."""
        fits = data.get("surrogates")
        fits = fits if isinstance(fits, Mapping) else {}
        return cls(
            converged=data.get("converged"),
            iterations=data.get("iterations"),
            cap=data.get("cap"),
            until=data.get("until"),
            rms=data.get("rms"),
            surrogates={
                name: SurrogateFit(
                    cosine_min=fit.get("cosine_min"),
                    cosine_mean=fit.get("cosine_mean"),
                    threshold=fit.get("threshold"),
                    matched=fit.get("matched"),
                )
                for name, fit in fits.items()
                if isinstance(fit, Mapping)
            },
            rms_target=data.get("rms_target"),
            feature_weights={
                name: fit["feature_weight"]
                for name, fit in fits.items()
                if isinstance(fit, Mapping) and "feature_weight" in fit
            },
            calibration=data.get("calibration"),
        )


def merge(parts: Sequence[VeilConvergence]) -> VeilConvergence:
    """One per-image veil's record: converged when every photo's perturbation converged."""
    first, n = parts[0], len(parts)
    fits = {
        name: SurrogateFit(
            cosine_min=min(p.surrogates[name].cosine_min for p in parts),  # type: ignore[type-var]
            cosine_mean=round(sum(p.surrogates[name].cosine_mean or 0.0 for p in parts) / n, 5),
            threshold=max(p.surrogates[name].threshold for p in parts),  # type: ignore[type-var]
            matched=round(sum(p.surrogates[name].matched or 0.0 for p in parts) / n, 5),
        )
        for name in first.surrogates
    }
    return VeilConvergence(
        converged=all(p.converged for p in parts),
        iterations=max(p.iterations or 0 for p in parts),
        cap=first.cap,
        until=first.until,
        rms=round(sum(p.rms or 0.0 for p in parts) / n, 3),
        surrogates=fits,
        rms_target=first.rms_target,
        feature_weights={},  # the merged record keeps per-photo weights in per_image only
        calibration=first.calibration,
    )


def from_stats(stats: object) -> VeilConvergence | None:
    """The record in a veil's statistics (``stats["convergence"]``); None when there is none
    (veil files written before convergence was recorded, protectors that do not record it)."""
    record = stats.get("convergence") if isinstance(stats, Mapping) else None
    return VeilConvergence.from_dict(record) if isinstance(record, Mapping) else None
