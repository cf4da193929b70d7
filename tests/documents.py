"""Building results documents in tests through the typed records, as the runner does."""

from __future__ import annotations

from typing import Any

from veilbench.measurements.records import Rate
from veilbench.results import ProtectorResults, Results, ResultsDocument, SurrogateResults


def rate(value: float | None, photos: int = 20, identities: int | None = None) -> Rate:
    return Rate(value, photos, identities)


def surrogate_set(key: str, **records: Any) -> SurrogateResults:
    """A surrogate set (``a`` or ``a+b``) with the given measurement records."""
    return SurrogateResults(surrogates=key.split("+"), measurements=dict(records))


def results(
    sets: dict[str, SurrogateResults],
    clean: dict[str, dict[str, Rate]] | None = None,
    protector: str = "veil",
) -> Results:
    return Results(
        measurements={"clean": clean} if clean is not None else {},
        protectors={protector: ProtectorResults(protector, {}, sets)},
    )


def records(doc: ResultsDocument, key: str, protector: str = "veil") -> dict[str, Any]:
    """One surrogate set's measurement records."""
    return doc.results.protectors[protector].surrogates[key].measurements
