"""A veil archive's size limits, checked from its directory before any member is inflated.

A zip bomb (a megabyte on disk, a gigabyte inflated) is refused having inflated nothing, and a
member whose data runs past its declared size is refused at its limit.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from veilbench.errors import VeilFileError

#: The largest veil side accepted from a file (the canonical crops are 112-160 px).
MAX_SIDE = 4096
#: Limits on what a veil archive may inflate to, checked from its directory before any member
#: is inflated (a zip bomb is refused having read a few bytes): the metadata, any one member
#: (a float32 veil of MAX_SIDE fits), all members together, and how many there are.
MAX_META_BYTES = 1 << 20
MAX_MEMBER_BYTES = 4 * 3 * MAX_SIDE * MAX_SIDE + (1 << 20)
MAX_TOTAL_BYTES = 256 << 20
MAX_MEMBERS = 4096


def check_sizes(z: zipfile.ZipFile, path: Path, fix: str) -> None:
    """Refuse an archive whose directory declares more than the limits, before inflating."""
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise VeilFileError(f"veil file {path} holds {len(infos)} members; not read; {fix}")
    for info in infos:
        limit = MAX_META_BYTES if info.filename == "meta.json" else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise VeilFileError(
                f"veil file {path}: member {info.filename} would inflate to {info.file_size} "
                f"bytes, over the limit of {limit}; not read; {fix}"
            )
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise VeilFileError(
            f"veil file {path} would inflate to {total} bytes, over the limit of "
            f"{MAX_TOTAL_BYTES}; not read; {fix}"
        )


def read_member(z: zipfile.ZipFile, name: str) -> bytes:
    """One member, never more than its limit even when its declared size lies."""
    limit = MAX_META_BYTES if name == "meta.json" else MAX_MEMBER_BYTES
    with z.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"member {name} inflates past the limit of {limit} bytes")
    return data
