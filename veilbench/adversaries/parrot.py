"""The parrot attacker: he obfuscates his own gallery the same way and matches against it.

Obfuscation (blur, pixelation, masks, k-same) defeats a matcher that compares an obfuscated
probe with clean gallery photos, but the operation is public: an attacker who applies it to his
gallery compares like with like and re-identifies far more faces (Newton, Sweeney and Malin,
"Preserving privacy by de-identifying face images", IEEE TKDE 2005, who name him the "parrot").
He leaves the protected photos as they are (``reconstruct`` returns them); what changes is the
gallery, which the run asks for through :meth:`Parrot.gallery` (``threat.own_gallery``).
"""

from __future__ import annotations

import torch

from veilbench.adversaries.contract import PublicKnowledge, ThreatModel
from veilbench.errors import ConfigError


class Parrot:
    """Matches protected photos against his gallery protected with the same public settings."""

    name = "parrot"
    threat = ThreatModel(public_algorithm=True, own_gallery=True)

    def __init__(self) -> None:
        self.public: PublicKnowledge | None = None
        self.ready = False

    def fit(self, public: PublicKnowledge) -> None:
        if public.protector is None:
            raise ConfigError("the parrot attacker needs the protector's public settings")
        self.public = public

    def gallery(self, photos: torch.Tensor, identities: list[str]) -> torch.Tensor:
        """``photos`` (his clean gallery, N x 3 x S x S) protected the way the protector does,
        one person at a time with his own models (a protector's secret, if any, is his own)."""
        if self.public is None:
            raise ConfigError("fit the parrot attacker before building his gallery")
        public, protector = self.public, self.public.protector
        out = photos.float().clone()
        order: dict[str, list[int]] = {}
        for i, who in enumerate(identities):
            order.setdefault(who, []).append(i)
        people = {who: out[rows] for who, rows in order.items()}
        secrets = protector.craft(
            people, public.models, device=public.device, seed=public.seed, progress=False
        )
        for who, rows in order.items():
            out[rows] = protector.apply(secrets[who], people[who]).detach().float().cpu()
        self.ready = True
        return out.clamp(0, 255).round()

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The protected photos as they are: he changes the gallery, not the probes."""
        if not self.ready:
            raise ConfigError(
                "the parrot attacker matches against his own protected gallery; this evaluation "
                "did not build one (Parrot.gallery), so it cannot score him"
            )
        return protected
