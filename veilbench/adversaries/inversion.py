"""A learned inversion adversary: undo veils it has never seen with a small trained network.

The protection algorithm is public, so the attacker crafts veils himself: on photos of OTHER
people (the public photos), against his own FR model, with the protector's public settings.
Every public photo under every such veil is a training pair (protected -> original). The
network sees one protected photo, the mean of the ``k`` protected photos it is attacked with,
and the ``average`` adversary's estimate, and learns a correction to that estimate (its last
layer starts at zero, so training starts from ``average``'s answer).

The trained network is cached in ``$VEILBENCH_CACHE/adversaries/`` under a key of everything
that shaped it (settings, protector and its config, the attacker's models, the public photos,
the seed), so a second run with the same settings trains nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from veilbench.adversaries.algebraic import AlgebraicAdversary
from veilbench.adversaries.contract import PublicKnowledge, ThreatModel
from veilbench.files import write_bytes_atomic
from veilbench.protectors.contract import make_config


@dataclass
class InversionConfig:
    """Training settings (defaults: a few minutes on a 2-core CPU at 112 x 112)."""

    #: Veils the attacker crafts on public people (one per person with enough photos).
    veils: int = 4
    #: Public photos each crafted veil is crafted on.
    photos_per_veil: int = 3
    #: Crafting iterations of the attacker's veils (0: the protector's own setting). Fewer
    #: than the defaults' 60 keep training to minutes on a CPU; the blend and the objective
    #: are the same, the veils a little less converged.
    craft_iterations: int = 20
    #: Channels of the first layer (the network is a two-scale U-Net).
    width: int = 16
    steps: int = 300
    batch_size: int = 8
    lr: float = 2e-3
    #: Protected photos averaged for the network's "mean" input, drawn in [2, max_k].
    max_k: int = 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class InversionNet(nn.Module):
    """Two-scale U-Net: 9 input channels (photo, mean, estimate) -> a correction of 3."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.inp = nn.Sequential(nn.Conv2d(9, w, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
        )
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.out = nn.Sequential(
            nn.Conv2d(3 * w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, 3, 3, padding=1)
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.inp(x)
        b = self.up(self.down(a))[..., : a.shape[-2], : a.shape[-1]]
        return self.out(torch.cat([a, b], 1))


class Inversion(AlgebraicAdversary):
    """Learned inversion trained on veils the attacker crafted on other people's photos."""

    name = "inversion"
    threat = ThreatModel(public_photos=True, public_algorithm=True)

    def __init__(self, **params: Any):
        super().__init__()
        self.config = make_config(InversionConfig, params)
        self.net: InversionNet | None = None
        #: Where the trained network was read from or written to, and whether it was trained.
        self.checkpoint: Path | None = None
        self.trained = False

    def _predict(self, protected: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """The ``average`` estimate plus the network's correction; ``mean`` is one image for
        the whole batch (attacking one person) or one per photo (training batches)."""
        assert self.net is not None
        a = min(self.alpha, 1 - 1e-6)
        prior = self.prior.to(protected.device) if self.prior is not None else 127.5
        mean = mean.expand_as(protected)
        estimate = ((protected - mean) / a + prior).clamp(0, 255)
        inputs = torch.cat([protected, mean, estimate], 1) / 127.5 - 1
        return ((inputs[:, 6:] + self.net(inputs)).clamp(-1, 1) + 1) * 127.5

    def reconstruct(
        self, protected: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        if self.net is None:
            raise RuntimeError("inversion: fit() must run before reconstruct()")
        device = next(self.net.parameters()).device
        x = protected.float().to(device)
        with torch.no_grad():
            return self._predict(x, x.mean(0, keepdim=True)).cpu()

    # Training -------------------------------------------------------------------------------
    def fit(self, public: PublicKnowledge) -> None:
        super().fit(public)
        self.prior = public.photos.float().mean(0, keepdim=True)
        path = self._cache_path(public)
        self.net = InversionNet(self.config.width)
        if path.is_file():
            state = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu")
            self.net.load_state_dict(state)
            public.say(f"inversion: cached network {path.name}")
        else:
            self._train(public)
            buf = io.BytesIO()
            torch.save(self.net.state_dict(), buf)
            write_bytes_atomic(path, buf.getvalue())
            self.trained = True
        self.checkpoint = path
        self.net.to(public.device).eval()

    def _train(self, public: PublicKnowledge) -> None:
        cfg = self.config
        gen = torch.Generator().manual_seed(public.seed)
        photos = public.photos.float()
        veils = self._craft_veils(public)
        net = self.net
        assert net is not None
        net.to(public.device).train()
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        a = min(self.alpha, 1 - 1e-6)
        t0 = time.perf_counter()
        for step in range(cfg.steps):
            # One veil per batch (flipped half the time: another plausible veil); k photos
            # averaged as the attacker would; the first of them is the one to reconstruct.
            veil = veils[int(torch.randint(len(veils), (1,), generator=gen))]
            if torch.rand(1, generator=gen) < 0.5:
                veil = veil.flip(-1)
            k = int(torch.randint(2, max(3, cfg.max_k + 1), (1,), generator=gen))
            idx = torch.randint(len(photos), (cfg.batch_size, k), generator=gen)
            x = photos[idx]  # B x k x 3 x S x S
            prot = (a * x + (1 - a) * veil).clamp(0, 255).round()
            inputs = prot[:, 0].to(public.device)
            mean = prot.mean(1).to(public.device)
            loss = (self._predict(inputs, mean) - x[:, 0].to(public.device)).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 100 == 0 or step == cfg.steps - 1:
                error = loss.detach().item()
                public.say(
                    f"inversion: step {step + 1}/{cfg.steps}, L1 {error:.1f} grey levels "
                    f"({time.perf_counter() - t0:.0f}s)"
                )

    def _craft_veils(self, public: PublicKnowledge) -> list[torch.Tensor]:
        """Veils crafted with the public algorithm on public people, against his own models."""
        cfg = self.config
        groups: dict[str, list[int]] = {}
        for i, who in enumerate(public.identities):
            groups.setdefault(who, []).append(i)
        people = [w for w in sorted(groups) if len(groups[w]) >= cfg.photos_per_veil]
        people = people[: cfg.veils]
        if public.protector is None or not public.models or not people:
            raise RuntimeError(
                "inversion needs the protector, an attacker's model and public people with "
                f"at least {cfg.photos_per_veil} photos each"
            )
        inputs = {
            w: public.photos[groups[w][: cfg.photos_per_veil]].float().to(public.device)
            for w in people
        }
        protector = public.protector
        if cfg.craft_iterations and hasattr(protector, "config_class"):
            settings = {**protector.config.to_dict(), "iterations": cfg.craft_iterations}
            protector = type(protector)(**settings)
        t0 = time.perf_counter()
        crafted = protector.craft(
            inputs, public.models, device=public.device, seed=public.seed + 7919, progress=False
        )
        public.say(f"inversion: crafted {len(people)} veils in {time.perf_counter() - t0:.0f}s")
        veils = []
        for w in people:
            veil = getattr(crafted[w], "veil", None)
            if veil is None or veil.ndim != 3:
                raise RuntimeError("inversion needs a protector with one veil per person")
            veils.append(veil.detach().float().cpu())
        return veils

    def _cache_path(self, public: PublicKnowledge) -> Path:
        from veilbench.weights import cache_dir

        protector = public.protector
        config = getattr(protector, "config", None)
        config = config.to_dict() if hasattr(config, "to_dict") else config
        key = {
            "settings": self.config.to_dict(),
            "alpha": self.alpha,
            "protector": getattr(protector, "name", None),
            "protector_config": config,
            "models": [_model_name(m) for m in public.models],
            "photos": hashlib.sha256(public.photos.to(torch.uint8).numpy().tobytes()).hexdigest(),
            "seed": public.seed,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode())
        return cache_dir() / "adversaries" / f"inversion-{digest.hexdigest()[:16]}.pt"


def _model_name(model: Any) -> str:
    """A model's card name (its weights' identity), else its class."""
    return str(getattr(getattr(model, "card", None), "name", type(model).__name__))
