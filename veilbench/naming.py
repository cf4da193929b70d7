"""Which photos a command reads, and the names of the files it writes for them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from veilbench.errors import ConfigError, DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
#: The file suffix of each output format.
SUFFIX = {"png": ".png", "jpeg": ".jpg"}


def collect_images(inputs: Sequence[str]) -> list[Path]:
    """The photos named: files as given, folders as their image files (sorted); a photo named
    twice (``a.jpg a.jpg``, or a file and its folder) is read once."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            paths.append(p)
        else:
            raise DataError(f"{item} does not exist")
    if not paths:
        raise DataError(f"no images found in {', '.join(inputs)}")
    seen: set[Path] = set()
    unique = []
    for p in paths:
        if (real := p.resolve()) not in seen:
            seen.add(real)
            unique.append(p)
    return unique


def output_names(paths: Sequence[Path], out: Path, suffix: str, force: bool) -> dict[Path, Path]:
    """One output file per input in ``out``, checked before any work is done.

    Inputs sharing a stem (``a/photo.jpg``, ``a/photo.png``, ``b/photo.jpg``) get ``photo.png``,
    ``photo-2.png``, ``photo-3.png``. An output that is one of the inputs is refused always; one
    that exists already is refused unless ``force``: no call overwrites what it did not create.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder; choose a folder for -o")
    inputs = {p.resolve() for p in paths}
    taken: set[str] = set()
    targets, existing = [], []
    for src in paths:
        stem, n = src.stem, 1
        while (name := f"{stem}{'' if n == 1 else f'-{n}'}{suffix}").lower() in taken:
            n += 1
        taken.add(name.lower())
        target = out / name
        if target.resolve() in inputs:
            raise ConfigError(
                f"{target} would overwrite the input {src}: write into another folder (-o)"
            )
        if os.path.lexists(target):  # a dangling symlink planted there counts too
            existing.append(target)
        targets.append(target)
    if existing and not force:
        what = f"{existing[0]} and {len(existing) - 1} more" if len(existing) > 1 else existing[0]
        raise ConfigError(
            f"{what} already in {out}: choose another folder (-o), or --force to replace them"
        )
    return dict(zip(paths, targets, strict=True))


def backup_name(path: Path) -> Path:
    """The first free ``NAME.bak``, ``NAME.bak2``, ... beside ``path``."""
    n = 1
    while (backup := path.with_name(f"{path.name}.bak{'' if n == 1 else n}")).exists():
        n += 1
    return backup
