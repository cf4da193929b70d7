"""The results contract: one versioned JSON document per run, typed records, written atomically.

Everything that reads or writes a results file goes through this package: the runner builds a
:class:`ResultsDocument`, the report, ``veilbench compare``, the console summary and the tests
read one with :func:`read_results`. Older ``schema_version``\\ s are upgraded on read
(:mod:`~veilbench.results.upgrade`); the JSON Schema is generated from the records and every
registered measurement's fragment (:func:`json_schema`, ``veilbench results schema``) and
published as ``docs/results.schema.json``.

- :mod:`~veilbench.results.records`: the document (run, protectors, surrogate sets);
- :mod:`~veilbench.results.files`: reading, writing; :mod:`~veilbench.results.codec`: JSON;
- :mod:`~veilbench.results.upgrade`: earlier schema versions; :mod:`~veilbench.results.schema`;
- :mod:`~veilbench.results.provenance`: git and environment;
- :mod:`~veilbench.results.summary`: the console summary.

What each measurement records, and which way its metrics are better, is the measurement's own
(:mod:`veilbench.measurements`); ``compare`` and its tolerances live in :mod:`veilbench.compare`.
"""

from __future__ import annotations

from veilbench.measurements.records import ImageQuality, Interval, Rate
from veilbench.results.files import read_json, read_results, write_json_atomic
from veilbench.results.provenance import environment, portable_path, utc_now
from veilbench.results.records import (
    SCHEMA_VERSION,
    ProtectorResults,
    Results,
    ResultsDocument,
    SurrogateResults,
)
from veilbench.results.schema import json_schema, validate

__all__ = [
    "SCHEMA_VERSION",
    "ImageQuality",
    "Interval",
    "ProtectorResults",
    "Rate",
    "Results",
    "ResultsDocument",
    "SurrogateResults",
    "environment",
    "json_schema",
    "portable_path",
    "read_json",
    "read_results",
    "utc_now",
    "validate",
    "write_json_atomic",
]
