"""The evaluation protocol: which photos craft veils, which test them, and what the gallery holds.

For each probe identity (one with at least ``min_images`` photos), after a seeded shuffle:
the first ``n_craft`` photos craft the veil, the next ``n_enrol`` are enrolled in the gallery
(clean; the service already knows the person), the rest are held-out test photos. The gallery
also holds every photo of every other identity as distractors (``max_distractors`` caps it).
The split is recorded in the results so a run can be audited and repeated.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from veilbench.data.datasets import FaceDataset, ImageRef
from veilbench.errors import ConfigError, DataError


@dataclass
class ProtocolConfig:
    min_images: int = 20
    n_craft: int = 10
    n_enrol: int = 5
    identities: int = 5  # probe identities to use (0 = all that qualify)
    max_distractors: int | None = None  # distractor photos in the gallery (None = all)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.n_craft < 1 or self.n_enrol < 1:
            raise ConfigError("protocol: n_craft and n_enrol must be at least 1")
        if self.min_images < self.n_craft + self.n_enrol + 1:
            raise ConfigError(
                f"protocol: min_images ({self.min_images}) must exceed n_craft + n_enrol "
                f"({self.n_craft} + {self.n_enrol}) so every probe keeps held-out photos"
            )


@dataclass
class ProbeSplit:
    identity: str
    craft: list[ImageRef]
    enrol: list[ImageRef]
    held_out: list[ImageRef]


@dataclass
class Split:
    probes: list[ProbeSplit]
    distractors: list[ImageRef]
    skipped_identities: list[dict] = field(default_factory=list)

    def gallery(self) -> list[ImageRef]:
        return [r for p in self.probes for r in p.enrol] + self.distractors

    def to_dict(self) -> dict:
        return {
            "probes": [
                {
                    "identity": p.identity,
                    "craft": [r.path.name for r in p.craft],
                    "enrol": [r.path.name for r in p.enrol],
                    "held_out": [r.path.name for r in p.held_out],
                }
                for p in self.probes
            ],
            "distractor_images": len(self.distractors),
            "distractor_identities": len({r.identity for r in self.distractors}),
            "skipped_identities": self.skipped_identities,
        }


def split(dataset: FaceDataset, config: ProtocolConfig, usable: set[str] | None = None) -> Split:
    """Choose probes and split their photos; ``usable`` limits to files that prepared cleanly."""
    config.validate()
    groups = {
        name: [r for r in refs if usable is None or str(r.path) in usable]
        for name, refs in dataset.by_identity().items()
    }
    qualified = sorted(n for n, refs in groups.items() if len(refs) >= config.min_images)
    skipped = [
        {"identity": n, "images": len(refs), "reason": f"fewer than {config.min_images} usable"}
        for n, refs in sorted(groups.items())
        if 0 < len(refs) < config.min_images and len(dataset.by_identity()[n]) >= config.min_images
    ]
    if not qualified:
        raise DataError(
            f"dataset {dataset.name} has no identity with >= {config.min_images} usable photos; "
            f"lower protocol.min_images or use a larger dataset"
        )
    rng = random.Random(config.seed)
    chosen = (
        qualified
        if config.identities <= 0
        else sorted(rng.sample(qualified, min(config.identities, len(qualified))))
    )
    if 0 < config.identities and len(qualified) < config.identities:
        skipped.append({"identity": "*", "reason": f"only {len(qualified)} probes qualify"})
    probes = []
    for name in chosen:
        refs = list(groups[name])
        random.Random(f"{config.seed}:{name}").shuffle(refs)
        a, b = config.n_craft, config.n_craft + config.n_enrol
        probes.append(ProbeSplit(name, refs[:a], refs[a:b], refs[b:]))
    # Distractors: every photo of every non-probe identity (including non-chosen qualifiers).
    distractors = [r for n in sorted(groups) if n not in chosen for r in groups[n]]
    if config.max_distractors is not None and len(distractors) > config.max_distractors:
        distractors = sorted(
            random.Random(config.seed).sample(distractors, config.max_distractors),
            key=lambda r: (r.identity, r.path.name),
        )
    return Split(probes, distractors, skipped)
