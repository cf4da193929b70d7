"""What the leaderboard knows about a protector from the plugin registry: its declared traits,
whether it is a demo, and which of its declared threat models a results file ran."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilbench.lazy import resolve
from veilbench.measurements.contract import Where
from veilbench.plugins import Plugins
from veilbench.protectors.contract import Traits, traits
from veilbench.protectors.variants import is_demo
from veilbench.registry import Entry

#: The threat an adversary belongs to when its registration does not say (``applies_to``).
DEFAULT_ADVERSARY_THREAT = "reused_perturbation"


@dataclass
class ProtectorInfo:
    """A protector's registration as the leaderboard shows it."""

    name: str  # the registry name ("pixelate" for the variant "pixelate[block=8]")
    traits: Traits
    demo: bool = False
    installed: bool = True
    description: str = ""
    plugin: str = ""
    note: str = ""  # why the traits are defaults, when they are


def registry_name(variant: str) -> str:
    """The registry name of a variant: the part before its ``[setting=value]``."""
    return variant.split("[", 1)[0].strip()


def _traits(entry: Entry) -> tuple[Traits, str]:
    """The traits its class declares; a factory function is called (constructors are cheap
    by contract) to ask the instance."""
    try:
        target = resolve(getattr(entry.factory, "lazy_target", entry.factory))
        return traits(target if isinstance(target, type) else entry.create()), ""
    except Exception as exc:  # a broken plugin must not take the leaderboard down
        return Traits(), f"traits unreadable ({type(exc).__name__}: {exc}): defaults shown"


def protector_info(variant: str, recorded: str, plugins: Plugins) -> ProtectorInfo:
    """The registration of ``variant`` (or of the name the file recorded for it)."""
    registry = plugins.registries["protectors"]
    for name in (registry_name(variant), registry_name(recorded or "")):
        if name and name in registry:
            entry = registry.get(name)
            declared, note = _traits(entry)
            return ProtectorInfo(
                name=name,
                traits=declared,
                demo=is_demo(entry),
                description=str(entry.metadata.get("description", "")),
                plugin=entry.plugin,
                note=note,
            )
    return ProtectorInfo(
        name=registry_name(variant),
        traits=Traits(),
        installed=False,
        note="not installed here: its traits are unknown, defaults shown",
    )


def threats_run(sets: list[Where], plugins: Plugins) -> dict[str, list[str]]:
    """threat model -> what the file ran of it (adversaries by name, purifications)."""
    adversaries = plugins.registries["adversaries"]
    run: dict[str, list[str]] = {}
    for w in sets:
        for a in getattr(w.records.get("adversaries"), "results", None) or []:
            entry = adversaries.get(a.adversary) if a.adversary in adversaries else None
            threat = (entry.metadata if entry else {}).get("applies_to", DEFAULT_ADVERSARY_THREAT)
            run.setdefault(str(threat), []).append(a.adversary)
        for attack in w.records.get("robustness") or {}:
            run.setdefault("purification", []).append(attack)
    return {t: list(dict.fromkeys(names)) for t, names in run.items()}


def threat_status(
    sets: list[Where], declared: tuple[str, ...], plugins: Plugins
) -> list[dict[str, Any]]:
    """Each declared threat model, run or not (a missing one must be visible), then any run
    that the protector does not declare."""
    run = threats_run(sets, plugins)
    rows = [
        {
            "threat": t,
            "declared": True,
            "run": t in run,
            "what": ", ".join(run.get(t, [])) or "not run",
        }
        for t in declared
    ]
    rows += [
        {"threat": t, "declared": False, "run": True, "what": ", ".join(names)}
        for t, names in run.items()
        if t not in declared
    ]
    return rows


def skipped_adversaries(sets: list[Where]) -> list[str]:
    """Adversaries the run chose but did not point at this protector, with why."""
    found: dict[str, str] = {}
    for w in sets:
        found.update(getattr(w.records.get("adversaries"), "skipped", None) or {})
    return [f"{name}: {why}" for name, why in found.items()]
