"""Built-in adversaries (implemented in :mod:`veilbench.adversaries`)."""

from __future__ import annotations

from veilbench import hookimpl
from veilbench.adversaries.contract import ThreatModel
from veilbench.lazy import factory

#: name -> (factory target, threat model, description).
BUILTIN_ADVERSARIES: dict[str, tuple[str, ThreatModel, str]] = {
    "known_pair": (
        "veilbench.adversaries.algebraic:KnownPair",
        ThreatModel(known_pair=True),
        "one leaked (original, protected) pair gives the veil exactly",
    ),
    "difference": (
        "veilbench.adversaries.algebraic:Difference",
        ThreatModel(),
        "each photo minus the mean of the person's other protected photos (the veil cancels)",
    ),
    "average": (
        "veilbench.adversaries.algebraic:Average",
        ThreatModel(public_photos=True),
        "veil = mean protected photo minus alpha * other people's mean face",
    ),
    "known_pair_search": (
        "veilbench.adversaries.adaptive:KnownPairSearch",
        ThreatModel(known_pair=True),
        "known_pair that also searches a per-photo veil shift (adaptive, vs the shift mitigation)",
    ),
    "average_aligned": (
        "veilbench.adversaries.adaptive:AverageAligned",
        ThreatModel(public_photos=True),
        "average after aligning per-photo veil shifts by correlation (adaptive)",
    ),
    "inversion": (
        "veilbench.adversaries.inversion:Inversion",
        ThreatModel(public_photos=True, public_algorithm=True),
        "small image-to-image network trained on other people's photos under veils the "
        "attacker crafts himself (cached checkpoint)",
    ),
    "parrot": (
        "veilbench.adversaries.parrot:Parrot",
        ThreatModel(public_algorithm=True, own_gallery=True),
        "obfuscates his own gallery the same way and matches against it (vs obfuscation)",
    ),
}
#: The protector threat (``Traits.threats``) each adversary belongs to.
APPLIES_TO: dict[str, str] = {"parrot": "parrot"}


@hookimpl
def register_adversaries(register):
    for name, (target, threat, description) in BUILTIN_ADVERSARIES.items():
        register(
            name,
            factory(target),
            threat=threat,
            description=description,
            applies_to=APPLIES_TO.get(name, "reused_perturbation"),
        )
