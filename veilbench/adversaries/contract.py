"""The adversary contract (no torch import, so plugins can read threat models cheaply)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

#: The photo counts an adversary is given by default (``[adversaries] ks`` overrides them).
DEFAULT_KS: tuple[int, ...] = (2, 5, 10)
#: A blend with no veil (x' = x) where a protector exposes no ``alpha``.
NO_BLEND = 1.0


@dataclass(frozen=True)
class ThreatModel:
    """What an adversary is given besides ``k`` protected photos of one person."""

    #: One (original, protected) pair of another photo of the same person, same veil.
    known_pair: bool = False
    #: Photos of other people (never the target's): a face prior or training data.
    public_photos: bool = False
    #: The protection algorithm and an FR model of his own, to craft veils himself.
    public_algorithm: bool = False
    #: He processes his own gallery the way the protector does and matches against it (the
    #: parrot): the run matches his ``reconstruct`` output against ``adversary.gallery(...)``.
    own_gallery: bool = False

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    def describe(self) -> str:
        given = ["k protected photos of one person"]
        given += ["a known (original, protected) pair"] if self.known_pair else []
        given += ["other people's photos"] if self.public_photos else []
        given += ["the public algorithm and his own FR model"] if self.public_algorithm else []
        given += ["his own gallery protected the same way"] if self.own_gallery else []
        return " + ".join(given)


@dataclass
class PublicKnowledge:
    """What every attacker of a run may know: the public settings and other people's photos."""

    alpha: float
    #: Other people's photos (N x 3 x S x S, [0, 255]); never the attacked identities'.
    photos: torch.Tensor
    identities: list[str]
    #: The protector (the public algorithm) and the attacker's own FR models.
    protector: Any = None
    models: list[Any] = field(default_factory=list)
    device: Any = "cpu"  # a torch.device
    seed: int = 0
    log: Callable[[str], None] | None = None  # progress messages (None: quiet)

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)


@runtime_checkable
class Adversary(Protocol):
    """An attacker: ``fit`` once per run with public knowledge, then ``reconstruct`` per person.

    ``reconstruct(protected, known)`` receives ``k`` protected photos of one person
    (``k x 3 x S x S``, [0, 255], as saved) and, when ``threat.known_pair``, ``known`` = one
    (original, protected) pair of ANOTHER photo of that person (each ``1 x 3 x S x S``). It
    returns ``k`` reconstructions of the originals, in [0, 255].
    """

    name: str
    threat: ThreatModel

    def fit(self, public: PublicKnowledge) -> None: ...

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor: ...


def public_alpha(protector: Any) -> float:
    """The blend weight an attacker reads from the protector's public settings."""
    config = getattr(protector, "config", None)
    alpha = config.get("alpha") if isinstance(config, dict) else getattr(config, "alpha", None)
    return float(alpha) if isinstance(alpha, int | float) and 0 < alpha < 1 else NO_BLEND
