"""Run configuration: defaults < ``veilbench.toml`` (or ``--config``) < command-line flags.

A config file mirrors the flags::

    [run]
    protector = "veil"
    models = "sface,facenet,dlib_resnet"
    attacks = "gaussian"
    dataset = "/data/lfw-deepfunneled"
    identities = 5
    seed = 0

    [protocol]          # see veilbench.data.protocol.ProtocolConfig
    min_images = 20
    n_craft = 10

    [protector]         # hyper-parameters passed to the protector (see `veilbench list protectors`)
    iterations = 100

    [attacks.sweeps]    # strengths per attack (defaults: `veilbench list attacks`)
    gaussian = [0, 30, 60, 120, 150]

``adversaries = "known_pair,difference,average"`` and ``adversary_k = "2,5,10"`` in ``[run]``
choose the attackers that try to undo the protection and how many photos each is given.

The effective config (every value, defaults included) goes into the results file.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from veilbench.data.protocol import ProtocolConfig
from veilbench.data.space import ALIGNMENTS
from veilbench.errors import ConfigError

DEFAULT_CONFIG_FILE = "veilbench.toml"


@dataclass
class RunConfig:
    protector: str = "veil"
    models: str = "all"
    surrogates: str | None = None  # one ensemble veil against these models (comma list)
    craft_with: str | None = None  # models that craft their own veils (default: all of --models)
    attacks: str | None = None
    # Adversaries that try to undo the protection ("privacy under attack"; "" = none) and the
    # numbers of protected photos per person each is given.
    adversaries: str = "known_pair,difference,average"
    adversary_k: str = "2,5,10"
    # What to measure (see `veilbench list measurements`); "all": every one that applies.
    measurements: str = "all"
    dataset: str | None = None
    # How photos become canonical crops (veilbench.data.space.ALIGNMENTS); None: the dataset's.
    alignment: str | None = None
    out: str = "reports/latest"
    device: str = "auto"
    # Where crafting and evaluation shards run: local (this process) or ray (a Ray cluster).
    executor: str = "local"
    # The Ray cluster to join (e.g. ray://head:10001); None: join the one on this machine or
    # start one.
    ray_address: str | None = None
    seed: int = 0
    batch_size: int = 32
    template_size: int = 112
    margin: int = 16
    robustness_on: str = "held_out"  # held_out | craft
    max_attack_images: int | None = None  # cap per identity for robustness sweeps
    progress: bool = True
    # Thumbnails of real photos in results.json and the report; off for files you commit or share.
    samples: bool = True
    # Also the veil and an (original, protected) pair of one photo: secrets, for private use only.
    secret_samples: bool = False
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    protector_params: dict[str, Any] = field(default_factory=dict)
    attack_sweeps: dict[str, list[float]] = field(default_factory=dict)
    # auto: the quick profile when no dataset was asked for or found (the synthetic smoke set);
    # quick / full: always that profile. See QUICK_PROFILE.
    profile: str = "auto"
    # Settings given in a config file or on the command line (a profile never overrides them).
    explicit: frozenset[str] = field(default_factory=frozenset, repr=False, compare=False)

    def adversary_ks(self) -> list[int]:
        """``adversary_k`` as sorted distinct positive integers (a ConfigError otherwise)."""
        try:
            ks = sorted({int(k) for k in self.adversary_k.split(",") if k.strip()})
        except ValueError:
            ks = []
        if not ks or ks[0] < 1:
            raise ConfigError(
                f'adversary_k must be a comma list of positive integers, e.g. "2,5,10"; '
                f"got {self.adversary_k!r}"
            )
        return ks

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("explicit")
        return data

    def apply_profile(
        self, fallback: bool, protector_profiles: Mapping[str, Mapping[str, Any]] | None = None
    ) -> str | None:
        """Apply the quick profile when asked for (or ``auto`` on the synthetic fallback).

        Returns the profile applied (None for the full protocol). Settings the user gave keep
        their values; everything else takes the quick profile's. ``protector_profiles`` is
        what each profile changes for the chosen protector, as the protector declares it
        (:func:`veilbench.protectors.contract.declared_profiles`): the run's profile touches no
        protector setting itself, so a protector without those settings runs unchanged.
        """
        if self.profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if self.profile == "full" or (self.profile == "auto" and not fallback):
            return None
        for key, value in QUICK_PROFILE.items():
            if key in self.explicit:
                continue
            if key.startswith("protocol."):
                setattr(self.protocol, key.split(".", 1)[1], value)
            elif key == "attack_sweeps":
                for name, sweep in value.items():
                    self.attack_sweeps.setdefault(name, sweep)
            else:
                setattr(self, key, value)
        for key, value in (protector_profiles or {}).get("quick", {}).items():
            if f"protector.{key}" not in self.explicit:
                self.protector_params.setdefault(key, value)
        return "quick"


PROFILES = ("auto", "quick", "full")
#: A complete run (every model, every report section) in about three minutes on a 2-core CPU:
#: two probe identities, a small gallery and a short noise sweep; fewer crafting steps where
#: the protector declares them (its config class's ``profiles``). Used automatically on the
#: synthetic smoke set, whose numbers are not meaningful anyway.
QUICK_PROFILE: dict[str, Any] = {
    "protocol.identities": 2,
    "protocol.max_distractors": 60,
    "attacks": "gaussian",
    "attack_sweeps": {"gaussian": [0.0, 60.0, 120.0]},
}


_RUN_KEYS = {f.name for f in fields(RunConfig)} - {
    "protocol",
    "protector_params",
    "attack_sweeps",
    "explicit",
}
_PROTOCOL_KEYS = {f.name for f in fields(ProtocolConfig)}
# [run] keys that mirror CLI flags but live in the protocol section.
_RUN_ALIASES = {"identities": "protocol.identities", "max_distractors": "protocol.max_distractors"}


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Read a TOML config (``path``, or ``./veilbench.toml`` when present) into a flat dict."""
    if path is None:
        path = Path(DEFAULT_CONFIG_FILE)
        if not path.is_file():
            return {}
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:  # TOML is UTF-8; the message never quotes the bytes
        raise ConfigError(
            f"cannot read config {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    allowed = {"run", "protocol", "protector", "attacks"}
    if unknown := set(raw) - allowed:
        raise ConfigError(f"config {path}: unknown sections {sorted(unknown)} (allowed {allowed})")
    if not all(isinstance(raw.get(k, {}), dict) for k in allowed):
        raise ConfigError(f"config {path}: each of {sorted(allowed)} must be a [section]")
    out: dict[str, Any] = {}
    for key, value in raw.get("run", {}).items():
        if key not in _RUN_KEYS and key not in _RUN_ALIASES:
            raise ConfigError(f"config {path}: unknown [run] key {key!r}")
        out[_RUN_ALIASES.get(key, key)] = value
    for key, value in raw.get("protocol", {}).items():
        if key not in _PROTOCOL_KEYS:
            raise ConfigError(f"config {path}: unknown [protocol] key {key!r}")
        out[f"protocol.{key}"] = value
    if raw.get("protector"):
        out["protector_params"] = dict(raw["protector"])
    sweeps = raw.get("attacks", {}).get("sweeps")
    if sweeps:
        out["attack_sweeps"] = _sweeps(sweeps, path)
    return out


def _sweeps(sweeps: Any, path: Path) -> dict[str, list[float]]:
    """``[attacks.sweeps]``: attack name -> list of finite strengths."""
    good = isinstance(sweeps, dict) and all(
        isinstance(vs, list) and all(_is_number(v) and math.isfinite(v) for v in vs)
        for vs in sweeps.values()
    )
    if not good:
        raise ConfigError(
            f"config {path}: [attacks.sweeps] takes lists of numbers, e.g. gaussian = [0, 30]"
        )
    return {k: [float(v) for v in vs] for k, vs in sweeps.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: What each setting must be: the accepted Python types and, for numbers, the smallest value.
_KINDS: dict[str, tuple[tuple[type, ...], int | None]] = {
    "str": ((str,), None),
    "str | None": ((str, type(None)), None),
    "bool": ((bool,), None),
    "int": ((int,), 0),
    "int | None": ((int, type(None)), 0),
}
_WORDS = {str: "a string", int: "an integer", bool: "true or false", type(None): "left unset"}
_MINIMUM = {"batch_size": 1, "template_size": 32, "max_attack_images": 1}


def _check(section: str, name: str, value: Any, annotation: str) -> None:
    """A ConfigError in one line unless ``value`` has the setting's type and range."""
    kinds, low = _KINDS[annotation]
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        want = " or ".join(_WORDS[k] for k in kinds)
        raise ConfigError(
            f"{section}{name} must be {want}, got {type(value).__name__} {value!r}"
            + (' (a comma list in one string, e.g. "sface,facenet")' if kinds[0] is str else "")
        )
    low = _MINIMUM.get(name, low)
    if low is not None and isinstance(value, int) and value < low:
        raise ConfigError(f"{section}{name} must be at least {low}, got {value}")


def build_config(file_values: dict[str, Any], flags: dict[str, Any]) -> RunConfig:
    """Merge defaults, file values and flags (flags given as None are 'not set')."""
    config = RunConfig()
    merged = {**file_values, **{k: v for k, v in flags.items() if v is not None}}
    for key, value in merged.items():
        if key.startswith("protocol."):
            setattr(config.protocol, key.split(".", 1)[1], value)
        elif key == "protector_params":
            config.protector_params.update(value)
        elif key == "attack_sweeps":
            config.attack_sweeps.update(value)
        elif key in _RUN_KEYS:
            setattr(config, key, value)
        else:
            raise ConfigError(f"unknown setting {key!r}")
    for f in fields(RunConfig):
        if f.name in _RUN_KEYS:
            _check("", f.name, getattr(config, f.name), str(f.type))
    for f in fields(ProtocolConfig):
        _check("protocol.", f.name, getattr(config.protocol, f.name), str(f.type))
    if not isinstance(config.protector_params, dict):
        raise ConfigError("[protector] must be a section of key = value hyper-parameters")
    if config.profile not in PROFILES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, got {config.profile!r}")
    config.protocol.seed = config.seed
    config.explicit = frozenset(
        {"protocol." + k.split(".", 1)[1] if k.startswith("protocol.") else k for k in merged}
        | {
            f"protector.{k}.{sub}" if isinstance(v, dict) else f"protector.{k}"  # [protector.x]
            for k, v in merged.get("protector_params", {}).items()
            for sub in (v if isinstance(v, dict) else [None])
        }
    )
    config.adversary_ks()  # a bad list fails here, before any work
    if config.alignment is not None and config.alignment not in ALIGNMENTS:
        raise ConfigError(
            f"alignment must be one of {', '.join(ALIGNMENTS)}, got {config.alignment!r}"
        )
    if config.robustness_on not in ("held_out", "craft"):
        raise ConfigError("robustness_on must be 'held_out' or 'craft'")
    if config.executor not in ("local", "ray"):
        raise ConfigError(f"executor must be local or ray, got {config.executor!r}")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {config.device!r}")
    return config


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` strings -> dict, values parsed as TOML scalars (numbers, bools, strings)."""
    params: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--param takes key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            params[key.strip()] = raw
    return params
