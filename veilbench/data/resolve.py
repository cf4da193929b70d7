"""Which dataset a run uses: the flag or config, ``$VEILBENCH_DATA``, LFW, else synthetic."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from veilbench.data.datasets import FaceDataset
from veilbench.data.space import FaceSpace
from veilbench.errors import ConfigError, VeilbenchError
from veilbench.registry import Registry


@dataclass
class ResolvedDataset:
    dataset: FaceDataset
    warnings: list[str]
    fallback: bool  # nothing was asked for or reachable: the synthetic smoke set stands in


def resolve_dataset(
    spec: str | None,
    datasets: Registry,
    space: FaceSpace,
    log: Callable[[str], None] = lambda message: None,
) -> ResolvedDataset:
    """``spec`` (a registered name or a path), else ``$VEILBENCH_DATA``, LFW, else synthetic."""
    spec = spec or os.environ.get("VEILBENCH_DATA")
    if spec:
        if spec in datasets:
            ds = datasets.get(spec).create()
        elif Path(spec).exists():
            looks_lfw = "lfw" in Path(spec).name.lower() or spec.endswith((".tgz", ".tar.gz"))
            ds = datasets.get("lfw" if looks_lfw else "folder").create(path=spec)
        else:
            raise ConfigError(
                f"--dataset {spec!r} is neither a registered dataset "
                f"({', '.join(datasets.names())}) nor an existing path"
            )
        return ResolvedDataset(ds, [ds.description] if ds.synthetic else [], fallback=False)
    try:
        return ResolvedDataset(datasets.get("lfw").create(), [], fallback=False)
    except VeilbenchError as exc:
        log(f"veilbench: LFW is not available ({exc})")
    from veilbench.data.synthetic import SYNTHETIC_WARNING

    log("=" * 78 + f"\nWARNING: {SYNTHETIC_WARNING}\n" + "=" * 78)
    synthetic = datasets.get("synthetic").create(space=space)
    return ResolvedDataset(synthetic, [SYNTHETIC_WARNING], fallback=True)
