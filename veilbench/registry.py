"""Registries of named factories (models, protectors, attacks, datasets) and name selection."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from veilbench.errors import RegistryError

KINDS = ("models", "protectors", "attacks", "adversaries", "datasets", "measurements")


@dataclass
class Entry:
    """One registration: a factory (not yet called) and its metadata."""

    name: str
    factory: Callable[..., Any]
    plugin: str
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return self.factory(*args, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (metadata objects with ``to_dict`` are expanded)."""
        meta = {k: _jsonable(v) for k, v in self.metadata.items()}
        return {"name": self.name, "plugin": self.plugin, **meta}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return _jsonable(asdict(value))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def natural_key(name: str) -> list[Any]:
    """Sort ``iresnet18`` before ``iresnet100``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


class Registry:
    """Named factories of one kind; a name registered twice is an error naming both plugins."""

    def __init__(self, kind: str, in_all: Callable[[Entry], bool] | None = None):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        #: Which entries ``all`` selects (e.g. models: real ones only); None: every entry.
        self.in_all = in_all

    def register(self, name: str, factory: Callable[..., Any], plugin: str, **metadata: Any):
        self.add(Entry(name, factory, plugin, self.kind, dict(metadata)))

    def check_new(self, entry: Entry, staged: Sequence[Entry] = ()) -> None:
        """Raise :class:`RegistryError` unless ``entry`` has a valid name no one else holds."""
        name, plugin = entry.name, entry.plugin
        if not isinstance(name, str) or not name or any(c in name for c in ",*?[]! "):
            raise RegistryError(f"invalid {self.kind[:-1]} name {name!r} from plugin {plugin}")
        other = self._entries.get(name) or next((e for e in staged if e.name == name), None)
        if other is not None:
            raise RegistryError(
                f"{self.kind[:-1]} {name!r} is registered twice: by plugin {other.plugin!r} and "
                f"by plugin {plugin!r}; rename it, or disable one with VEILBENCH_DISABLE_PLUGINS"
            )

    def add(self, entry: Entry) -> None:
        self.check_new(entry)
        self._entries[entry.name] = entry

    def drop_plugin(self, plugin: str) -> None:
        """Forget every entry ``plugin`` registered."""
        self._entries = {n: e for n, e in self._entries.items() if e.plugin != plugin}

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: natural_key(e.name)))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return [e.name for e in self]

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        """The message for a name no plugin registered, with the closest registered names."""
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind[:-1]} {name!r}{hint} (see `veilbench list {self.kind}`)"

    def select(self, spec: str | list[str] | None) -> list[Entry]:
        """Entries named by a selection: ``all``, ``a,b``, wildcards ``iresnet*``, ``-name``.

        Items are applied left to right; a selection that starts with an exclusion starts from
        everything. An unknown exact name or a pattern matching nothing is an error.
        """
        items = _split(spec)
        if not items:
            raise RegistryError(f"empty {self.kind} selection")
        chosen: list[str] = [] if not items[0].startswith("-") else self._match("all")
        for item in items:
            exclude = item.startswith("-")
            pattern = item[1:] if exclude else item
            matched = self._match(pattern)
            if exclude:
                chosen = [n for n in chosen if n not in matched]
            else:
                chosen += [n for n in matched if n not in chosen]
        if not chosen:
            raise RegistryError(f"the {self.kind} selection {','.join(items)!r} selects nothing")
        return [self._entries[n] for n in chosen]

    def _match(self, pattern: str) -> list[str]:
        if pattern == "all":
            return [e.name for e in self if self.in_all is None or self.in_all(e)]
        if any(c in pattern for c in "*?["):
            matched = [n for n in self.names() if fnmatch.fnmatchcase(n, pattern)]
            if not matched:
                raise RegistryError(
                    f"pattern {pattern!r} matches no {self.kind} "
                    f"(registered: {', '.join(self.names()) or 'none'})"
                )
            return matched
        if pattern not in self._entries:
            raise RegistryError(self.unknown(pattern))
        return [pattern]


def _split(spec: str | list[str] | None) -> list[str]:
    if spec is None:
        return []
    parts = spec if isinstance(spec, list) else [spec]
    return [p.strip() for part in parts for p in part.split(",") if p.strip()]
