"""Measurements: what a run measures, one class per module, registered like every plugin kind.

The built-in measurements (clean rank-1, the MSR matrix, convergence, image quality,
robustness, impersonation, perception, adversaries, samples, crafting cost, the privacy
summary and the per-identity breakdown) are registered by ``veilbench_builtins.measurements``
through the ``register_measurements`` hook, exactly as a plugin's would be. The contract is
:class:`veilbench.measurements.contract.Measurement`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veilbench.errors import RegistryError
from veilbench.measurements.contract import Measurement

if TYPE_CHECKING:
    from veilbench.plugins import Plugins

#: The record names every subset-keyed measurement uses.
SUBSETS = ("craft", "held_out")


def registered(plugins: Plugins | None = None) -> dict[str, Measurement]:
    """name -> measurement, every registered one, in report order (dependencies first)."""
    from veilbench.plugins import get_plugins

    plugins = plugins or get_plugins()
    found: dict[str, Measurement] = {}
    for entry in plugins.registries["measurements"]:
        measurement = entry.create()
        if not isinstance(measurement, Measurement) or measurement.name != entry.name:
            raise RegistryError(
                f"measurement {entry.name!r} (plugin {entry.plugin}) is not a Measurement "
                "subclass registered under its own name"
            )
        found[entry.name] = measurement
    return _ordered(found)


def _ordered(found: dict[str, Measurement]) -> dict[str, Measurement]:
    """By ``order``, then name; each after the measurements it reads."""
    pending = sorted(found.values(), key=lambda m: (getattr(m, "order", 100), m.name))
    out: dict[str, Measurement] = {}
    while pending:
        for m in pending:
            if all(dep in out or dep not in found for dep in m.after):
                out[m.name] = m
                pending.remove(m)
                break
        else:  # a cycle: keep the declared order rather than hang
            out.update((m.name, m) for m in pending)
            break
    return out


def select(
    spec: str | None, config: Any, plugins: Plugins | None = None
) -> tuple[list[Measurement], list[str]]:
    """The measurements ``--measurements`` names (default ``all``) that apply to ``config``,
    with those they read added; and a note for each named one that does not apply."""
    every = registered(plugins)
    spec = (spec or "all").strip() or "all"
    named: set[str] = set()
    if spec != "all":
        registry = (plugins or _plugins()).registries["measurements"]
        named = {e.name for e in registry.select(spec)}
    chosen = set(every) if spec == "all" else set(named)
    for name in list(chosen):  # what a chosen measurement reads comes with it
        chosen |= _closure(every, name)
    picked, notes = [], []
    for name, m in every.items():
        if name not in chosen:
            continue
        if m.applies(config):
            picked.append(m)
        elif name in named:
            notes.append(f"measurement {name} does not apply to this run (see its `needs`)")
    return picked, notes


def _closure(every: dict[str, Measurement], name: str) -> set[str]:
    found, todo = set(), [name]
    while todo:
        for dep in every[todo.pop()].after:
            if dep in every and dep not in found:
                found.add(dep)
                todo.append(dep)
    return found


def _plugins() -> Plugins:
    from veilbench.plugins import get_plugins

    return get_plugins()
