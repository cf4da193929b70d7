"""The JSON Schema (draft 2020-12) of a results file, generated from the document's records
and each registered measurement's fragment (published as docs/results.schema.json)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from veilbench.measurements.contract import Measurement
from veilbench.results.codec import hints
from veilbench.results.records import SCHEMA_VERSION, ResultsDocument


class _Builder:
    """Schemas of types, each record once under ``$defs``."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def __call__(self, tp: Any) -> dict[str, Any]:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            options = [self(o) for o in typing.get_args(tp) if o is not type(None)]
            nullable = type(None) in typing.get_args(tp)
            return {"anyOf": options + ([{"type": "null"}] if nullable else [])}
        if dataclasses.is_dataclass(tp):
            return self._record(tp)
        if origin is dict:
            return {"type": "object", "additionalProperties": self(typing.get_args(tp)[1])}
        if origin is list:
            return {"type": "array", "items": self(typing.get_args(tp)[0])}
        simple = {float: "number", int: "integer", str: "string", bool: "boolean"}
        if tp in simple:
            # A float written as null is NaN: every number accepts null.
            return {"type": ["number", "null"]} if tp is float else {"type": simple[tp]}
        if tp is type(None):
            return {"type": "null"}
        return {}  # Any

    def _record(self, tp: type) -> dict[str, Any]:
        name = tp.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder against recursion
            types_ = hints(tp)
            fields_ = dataclasses.fields(tp)
            self.defs[name] = {
                "type": "object",
                "description": (tp.__doc__ or "").strip().splitlines()[0],
                "properties": {f.name: self(types_[f.name]) for f in fields_},
                "required": [
                    f.name
                    for f in fields_
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                ],
            }
        return {"$ref": f"#/$defs/{name}"}


def json_schema(measurements: dict[str, Measurement] | None = None) -> dict[str, Any]:
    """The schema of a results file with every registered measurement's record."""
    from veilbench.measurements import registered

    measurements = registered() if measurements is None else measurements
    build = _Builder()
    top = build(ResultsDocument)
    build.defs["ResultsDocument"]["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    for scope, record in (("run", "Results"), ("surrogates", "SurrogateResults")):
        build.defs[record]["properties"]["measurements"] = {
            "type": "object",
            "description": "measurement name -> its record (plugins' records included)",
            "properties": {
                m.name: {"description": m.description, **m.schema(build)}
                for m in measurements.values()
                if m.scope == scope
            },
            "additionalProperties": {"type": "object"},
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://veilbench.dev/schema/results-{SCHEMA_VERSION}.json",
        "title": "veilbench results",
        **top,
        "$defs": build.defs,
    }


def validate(document: dict[str, Any]) -> None:
    """Check a results document (as JSON data) against :func:`json_schema` (needs jsonschema)."""
    import jsonschema

    jsonschema.validate(document, json_schema())
