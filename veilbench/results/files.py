"""Reading and writing results files: JSON numbers (NaN as null), atomic writes, any known
schema version read (older ones upgraded), every record typed by its measurement."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from veilbench.files import write_text_atomic
from veilbench.measurements.contract import Measurement, Where
from veilbench.results.codec import clean, from_json
from veilbench.results.records import SCHEMA_VERSION, ResultsDocument
from veilbench.results.upgrade import upgrade


def document_from_dict(
    doc: dict[str, Any], measurements: dict[str, Measurement] | None = None
) -> ResultsDocument:
    """A :class:`ResultsDocument` from JSON data of any known ``schema_version``.

    Records of measurements that are not registered here (a plugin not installed) stay plain
    dicts: kept on rewrite, shown nowhere.
    """
    from veilbench.errors import ConfigError
    from veilbench.measurements import registered

    measurements = registered() if measurements is None else measurements
    doc = upgrade(doc, measurements)
    try:
        typed = from_json(ResultsDocument, doc)
        _type_records(typed.results.measurements, measurements, "run")
        for p in typed.results.protectors.values():
            for s in p.surrogates.values():
                _type_records(s.measurements, measurements, "surrogates")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ConfigError(f"not a valid veilbench results document: {exc}") from exc
    typed.derive(measurements)  # derived records: recomputed, never trusted from the file
    return typed


def _type_records(records: dict[str, Any], measurements: dict[str, Measurement], scope: str):
    for name, value in list(records.items()):
        m = measurements.get(name)
        if m is not None and m.scope == scope and value is not None:
            try:
                records[name] = from_json(m.record_type(), value)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise TypeError(f"measurements.{name}: {exc}") from exc


def write_json_atomic(path: str | os.PathLike, document: Any) -> Path:
    """Write a document (a dict or a :class:`ResultsDocument`) as JSON, atomically."""
    if isinstance(document, ResultsDocument):
        document = document.to_dict()
    text = json.dumps(clean(document), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A results file's JSON data, checked to be a results document this veilbench reads."""
    from veilbench.errors import ConfigError

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read results file {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("schema_version"), int):
        raise ConfigError(f"{path} is not a veilbench results file (no schema_version)")
    if doc["schema_version"] > SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has schema_version {doc['schema_version']}; this veilbench reads up to "
            f"{SCHEMA_VERSION}: upgrade veilbench"
        )
    return doc


def read_results(
    path: str | os.PathLike, measurements: dict[str, Measurement] | None = None
) -> ResultsDocument:
    """Load a results file of any known schema version, checking it is one."""
    from veilbench.errors import ConfigError

    doc = read_json(path)
    try:
        return document_from_dict(doc, measurements)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


__all__ = ["Where", "document_from_dict", "read_json", "read_results", "write_json_atomic"]
