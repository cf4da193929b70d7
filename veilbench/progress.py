"""Progress bars with ETA for long work; silenced by ``--quiet`` or ``VEILBENCH_PROGRESS=0``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled(requested: bool = True) -> bool:
    if os.environ.get("VEILBENCH_PROGRESS", "1") in ("0", "false", "no"):
        return False
    return requested and sys.stderr.isatty()


def progress_bar(
    items: Iterable[T], *, total: int | None = None, desc: str = "", enable: bool = True
) -> Iterator[T]:
    """``tqdm`` over ``items`` (on stderr, with ETA) when enabled, else the items unchanged."""
    if not progress_enabled(enable):
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False)
