"""The protector contract: what ``veilbench run``, ``craft``, ``protect`` and ``recover`` call.

This module imports no torch, so the contract can be read (and its traits checked) cheaply.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from veilbench.errors import ConfigError
from veilbench.lazy import resolve

if TYPE_CHECKING:
    import torch

    from veilbench.models.base import FaceModel
    from veilbench.veilfile import Veil


@runtime_checkable
class Protector(Protocol):
    """A protection method: craft a secret per identity, apply it to photos, undo it.

    A protector is made by its registered factory, ``factory(**params)``, from the
    ``--param key=value`` pairs (values arrive as strings; the built-ins coerce them to the type
    of their config field). The constructor must be cheap (no model, no data) and raise
    :class:`veilbench.errors.ConfigError` for an unknown key or a bad value. Registering a
    ``config`` dataclass as metadata lets ``veilbench run`` check ``--param`` keys and types
    before anything heavy starts; its optional ``profiles`` class attribute says what a run
    profile changes for the protector (see :func:`declared_profiles`).

    Attributes (``per_image``, ``secret``, ``recoverable``, ``threats``, ``promise`` and
    ``utility`` are optional class attributes, the one place each trait is declared; read them
    with :func:`traits`):

    - ``name`` (str): the registered name, stored in veil files and results.
    - ``config``: the hyper-parameters in use (a dataclass with ``to_dict()``, or a dict);
      recorded in every results file.
    - ``per_image`` (bool, default False): one perturbation per photo instead of one per person.
      The runner then crafts the held-out photos too (``identities`` holds all of them) and
      ``veilbench craft`` refuses it (a per-photo perturbation is no reusable veil).
    - ``secret`` (bool, default True): ``craft`` returns something to keep per identity (a
      :class:`~veilbench.veilfile.Veil`). A protector with nothing to keep (a blur, a mask)
      sets it False, returns ``None`` for every identity, and ``apply`` receives ``None``.
    - ``recoverable`` (bool, default True): ``recover`` gives the original photos back from the
      protected ones and the secret. A protector that cannot be undone sets it False: the runner
      never calls ``recover``, its results hold no recovered-image figures (``None``) and the
      report says "no recovery (protector cannot be undone)".
    - ``threats`` (tuple of names from :data:`THREATS`, default ``("purification",)``): the
      threat models that apply to it, so a run attacks each protector the way that suits it.
    - ``promise`` (a name from :data:`PROMISES`, default ``"concealment"``) and ``utility`` (a
      name from :data:`UTILITIES`, default ``"none"``): what the protection promises and the
      figure that measures how well it keeps that promise (a leaderboard's x axis).

    Methods:

    - ``craft(identities, surrogates, *, device, seed, out_dir, progress)``: ``identities`` maps
      an identity name to its photos, a float tensor ``n x 3 x S x S`` of canonical crops (RGB,
      [0, 255], see :class:`~veilbench.models.base.FaceSpace`); ``surrogates`` is a list of
      :class:`~veilbench.models.base.FaceModel` (frozen, on ``device``) to craft against.
      Returns ``{identity: Veil}`` (``{identity: None}`` when ``secret`` is False) with every
      identity of the input. ``out_dir`` (may be None) is where finished veils may be saved so
      an interrupted run resumes; ``seed`` makes crafting reproducible; ``progress`` allows a
      progress bar.
    - ``calibrate(identities, surrogates, *, device)`` (optional): what the protector measures
      once over every identity of a run (the engine's per-surrogate scales and 1:N gallery).
      When it exists, the executors call it once and pass its result to every ``craft`` call
      as ``calibration=...``, so a veil does not depend on how identities are chunked.
    - ``apply(veil, images)``: protected photos, same shape as ``images`` (``N x 3 x S x S``,
      [0, 255]); for a per-image protector the images are the ones it was crafted on.
    - ``recover(veil, protected, gaussian_sigma=0.0)``: the recovered photos (only called when
      ``recoverable``); ``gaussian_sigma > 0`` asks for an optional smoothing afterwards.
    """

    name: str
    config: Any

    def craft(
        self,
        identities: dict[str, torch.Tensor],
        surrogates: list[FaceModel],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        out_dir: str | Path | None = None,
        progress: bool = True,
    ) -> dict[str, Veil | None]: ...

    def apply(self, veil: Veil | None, images: torch.Tensor) -> torch.Tensor: ...

    def recover(
        self, veil: Veil | None, protected: torch.Tensor, gaussian_sigma: float = 0.0
    ) -> torch.Tensor: ...


#: Threat models a protector can declare: which adversaries and attacks apply to it.
THREATS: dict[str, str] = {
    "reused_perturbation": "one perturbation reused over a person's photos: the algebraic and "
    "learned adversaries that cancel it (difference, average, known pair, inversion)",
    "parrot": "the attacker obfuscates his own gallery the same way and matches against it",
    "purification": "image processing that strips a perturbation (JPEG, resize, blur, median, "
    "non-local means)",
}
#: What a protection promises: ``cloak`` (the photo looks unchanged; the face recogniser is
#: fooled) or ``concealment`` (the face is hidden from people; its owner or the service may
#: keep something).
PROMISES: dict[str, str] = {
    "cloak": "the photo looks unchanged while face recognition fails",
    "concealment": "the face is hidden from people; its owner or the service may keep something",
}
#: The figure that says how well a protection keeps its promise (lower LPIPS is better; higher
#: is better for the others).
UTILITIES: dict[str, str] = {
    "lpips": "LPIPS of the protected photo to the original (a cloak's visual cost)",
    "white_box_tar": "the service's own model still recognises the protected photos",
    "recoverability": "the owner recovers the original photos from the protected ones",
    "none": "nothing is kept",
}


@dataclass(frozen=True)
class Traits:
    """What a protector declares about itself (see :class:`Protector`)."""

    per_image: bool = False
    secret: bool = True
    recoverable: bool = True
    threats: tuple[str, ...] = ("purification",)
    promise: str = "concealment"
    utility: str = "none"


C = TypeVar("C")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Turn a CLI string into the type of the field's default; refuse any other type."""
    if not isinstance(value, str) or isinstance(default, str):
        return _typed(name, value, default)
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return _typed(name, type(default)(value), default)
    except ValueError:
        raise ConfigError(
            f"parameter {name}={value!r} is not a valid {type(default).__name__}"
        ) from None


def _typed(name: str, value: Any, default: Any) -> Any:
    """``value`` if it has the default's type (an int stands for a float), else a ConfigError."""
    if default is None:
        return value  # an optional setting: any value its protector accepts
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(default, bool) and isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and math.isfinite(value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"parameter {name}={value!r} is not a valid {type(default).__name__} "
            f"(default {default!r})"
        )
    return float(value) if isinstance(default, float) else value


def make_config(cls: type[C], params: dict[str, Any]) -> C:
    """Build dataclass ``cls`` from keyword parameters (strings coerced); unknown -> ConfigError."""
    valid = {f.name: f for f in fields(cls)}
    unknown = sorted(set(params) - set(valid))
    if unknown:
        hints = [difflib.get_close_matches(k, list(valid), n=1, cutoff=0.6) for k in unknown]
        hint = "".join(f"; did you mean {h[0]}?" for h in hints if h)
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for {cls.__name__}{hint} "
            f"(valid keys: {', '.join(valid) or 'none'})"
        )
    defaults = cls()
    return cls(**{k: _coerce(k, v, getattr(defaults, k)) for k, v in params.items()})


def declared_profiles(metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each run profile changes for a protector: the ``profiles`` class attribute of its
    registered ``config`` dataclass (e.g. ``{"quick": {"iterations": 30}}``); nothing when it
    declares none, so a profile never passes a protector a setting it does not have."""
    config_class = metadata.get("config")
    if config_class is None:
        return {}
    declared = getattr(resolve(config_class), "profiles", None) or {}
    return {name: dict(settings) for name, settings in declared.items()}


def traits(protector: Any) -> Traits:
    """The traits a protector (instance or class) declares; missing ones take their defaults."""
    default = Traits()
    flags = {k: bool(getattr(protector, k, getattr(default, k))) for k in _FLAGS}
    threats = getattr(protector, "threats", default.threats)
    return Traits(
        **flags,
        threats=(threats,) if isinstance(threats, str) else tuple(str(t) for t in threats),
        promise=str(getattr(protector, "promise", default.promise)),
        utility=str(getattr(protector, "utility", default.utility)),
    )


_FLAGS = ("per_image", "secret", "recoverable")
