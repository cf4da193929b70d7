"""Checks of a run's names and parameters, before any photo is prepared or model loaded.

``validate_run`` reads only the registries and the protector's config dataclass, so a misspelt
``--attacks pixelat`` fails in about a second with "did you mean" instead of after minutes of
data preparation and gallery embeddings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from veilbench.config import RunConfig
from veilbench.errors import ConfigError, RegistryError
from veilbench.lazy import resolve
from veilbench.plugins import Plugins
from veilbench.protectors.variants import protector_variants


def validate_run(
    config: RunConfig, plugins: Plugins, checkpoints: dict[str, str] | None = None
) -> None:
    """Raise :class:`ConfigError` (one line, with "did you mean") for anything ``run`` rejects.

    Checks every name in ``--protector``, ``--models``, ``--craft-with``, ``--surrogates``,
    ``--attacks``, ``--adversaries``, ``--dataset``, ``--checkpoint`` and ``[attacks.sweeps]``,
    and every ``--param`` key and value against the protector's config.
    """
    reg = plugins.registries
    try:
        variants = protector_variants(config.protector, config.protector_params, reg["protectors"])
        selected = {e.name for e in reg["models"].select(config.models)}
        if config.craft_with is not None:
            reg["models"].select(config.craft_with)
        if config.attacks:
            reg["attacks"].select(config.attacks)
        if config.adversaries.strip():
            reg["adversaries"].select(config.adversaries)
        reg["measurements"].select(config.measurements)
        for name in config.attack_sweeps:
            reg["attacks"].get(name)
        for name in checkpoints or {}:
            reg["models"].get(name)
        for name in _names(config.surrogates):
            reg["models"].get(name)
            if name not in selected:
                raise ConfigError(
                    f"--surrogates names {name!r}, which --models does not select "
                    f"({', '.join(sorted(selected))})"
                )
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    _check_dataset(config, plugins)
    for v in variants:
        check_params(v.entry.metadata, v.entry.factory, v.params)


def check_params(metadata: dict[str, Any], factory: Any, params: dict[str, Any]) -> None:
    """``params`` against the registered ``config`` dataclass, else by building the protector.

    Building is safe: the protector contract requires a cheap constructor that raises
    :class:`ConfigError` for unknown keys and bad values.
    """
    from veilbench.protectors.contract import make_config

    config_class = metadata.get("config")
    if config_class is not None:
        make_config(resolve(config_class), params)
    else:
        factory(**params)


def _check_dataset(config: RunConfig, plugins: Plugins) -> None:
    spec = config.dataset or os.environ.get("VEILBENCH_DATA")
    datasets = plugins.registries["datasets"]
    if spec and spec not in datasets and not Path(spec).exists():
        raise ConfigError(f"{datasets.unknown(spec)}; nor is it an existing path")
    if spec and Path(spec).is_file() and not spec.endswith((".tgz", ".tar.gz")):
        raise ConfigError(
            f"--dataset {spec} is a file; give a folder of <identity>/<image> photos, an LFW "
            "folder or .tgz, or a registered dataset name (veilbench list datasets)"
        )


def _names(spec: str | None) -> list[str]:
    return [s.strip() for s in (spec or "").split(",") if s.strip()]
