"""The protectors one run crafts: ``--protector a,b,c`` (or ``all``), each strength of a sweep.

``--param key=value`` sets a protector's setting; with several protectors the key names its
protector (``--param pixelate.block=8``). A comma list of values (``pixelate.block=4,8,16``,
or a TOML list in a config file) sweeps that setting: one *variant* per value, named
``pixelate[block=8]``, so one run can draw a protector's privacy-utility curve. ``all`` leaves
out demonstration protectors (registered with ``demo=True``) unless they are named.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from veilbench.errors import ConfigError
from veilbench.protectors.contract import declared_profiles
from veilbench.registry import Entry, Registry


@dataclass
class Variant:
    """One protector with one setting of its parameters: a row of a leaderboard."""

    name: str  # the registry name, or ``name[key=value,...]`` for a point of a sweep
    entry: Entry
    params: dict[str, Any] = field(default_factory=dict)

    def create(self) -> Any:
        return self.entry.create(**self.params)


def is_demo(entry: Entry) -> bool:
    """A demonstration or plumbing protector (``all`` runs it only when it is named): its
    registration says ``demo=True``, or (older plugins) its description ends "(example)"."""
    if "demo" in entry.metadata:
        return bool(entry.metadata["demo"])
    return str(entry.metadata.get("description", "")).rstrip().endswith("(example)")


def select_protectors(spec: str, registry: Registry) -> list[Entry]:
    """The protectors ``spec`` names (``all``: every one but the demonstrations)."""
    entries = registry.select(spec)
    named = {s.strip() for s in spec.split(",")}
    return [e for e in entries if e.name in named or not is_demo(e)]


def _values(value: Any) -> list[Any]:
    """A parameter's values: a list (config file) or a comma list (command line) sweeps."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str) and "," in value:
        return [_scalar(v.strip()) for v in value.split(",") if v.strip()]
    return [value]


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def flatten(params: Mapping[str, Any]) -> dict[str, Any]:
    """A config file's ``[protector.pixelate]`` table as ``pixelate.block`` keys."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _own_params(entry: Entry, params: Mapping[str, Any], several: bool) -> dict[str, Any]:
    """The parameters meant for ``entry``: ``entry.key``, and plain keys when it runs alone."""
    own = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(entry.name + ".")}
    plain = {k: v for k, v in params.items() if "." not in k}
    if plain and several:
        key = next(iter(plain))
        raise ConfigError(
            f"--param {key}: with several protectors name the protector, e.g. "
            f"--param {entry.name}.{key}=..."
        )
    return {**plain, **own}


def protector_variants(
    spec: str,
    params: Mapping[str, Any],
    registry: Registry,
    *,
    profile: str | None = None,
    explicit: frozenset[str] = frozenset(),
) -> list[Variant]:
    """Every protector ``spec`` selects, once per point of its swept parameters.

    ``profile`` (e.g. ``"quick"``) adds what each protector declares for it, except settings
    the user gave (``explicit`` holds ``protector.<key>`` and ``protector.<name>.<key>``).
    """
    entries = select_protectors(spec, registry)
    several = len(entries) > 1
    params = flatten(params)
    # Settings for a protector this run does not craft are kept for another run (a config file
    # may hold every protector's); a name no protector has is a typo.
    known = set(registry.names())
    stray = sorted(k for k in params if "." in k and k.split(".", 1)[0] not in known)
    if stray:
        raise ConfigError(
            f"--param {stray[0]} names no protector (registered: {', '.join(sorted(known))})"
        )
    variants = []
    for entry in entries:
        given = _own_params(entry, params, several)
        quick = declared_profiles(entry.metadata).get(profile or "", {})
        base = {
            k: v
            for k, v in quick.items()
            if f"protector.{k}" not in explicit and f"protector.{entry.name}.{k}" not in explicit
        }
        grid = {k: _values(v) for k, v in given.items()}
        swept = [k for k, vs in grid.items() if len(vs) > 1]
        for point in itertools.product(*grid.values()):
            chosen = dict(zip(grid, point, strict=True))
            label = ",".join(f"{k}={chosen[k]}" for k in swept)
            name = f"{entry.name}[{label}]" if label else entry.name
            variants.append(Variant(name, entry, {**base, **chosen}))
    return variants
