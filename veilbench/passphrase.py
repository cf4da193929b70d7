"""Where a veil passphrase comes from: a file or the environment, never a command-line value.

A command-line value ends up in shell histories and process lists, so the sources are a file
whose first line is the passphrase, then :data:`PASSPHRASE_ENV`. Asking in a terminal is the
command line's part (``veilbench.commands.options``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from veilbench.errors import ConfigError

#: The environment variable a veil passphrase may come from.
PASSPHRASE_ENV = "VEILBENCH_VEIL_PASSPHRASE"


@dataclass(frozen=True)
class Passphrase:
    """A passphrase found in a source, with a warning for the user when the source leaks it."""

    value: bytes
    warning: str | None = None


def passphrase_from_file(path: str | os.PathLike) -> Passphrase:
    """The first line of ``path`` (a warning when others may read the file)."""
    from veilbench.veilcrypt import passphrase_bytes  # imports torch: only when reading

    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:  # the message never quotes the content
        raise ConfigError(
            f"--passphrase-file {path} cannot be read as UTF-8 text ({type(exc).__name__})"
        ) from None
    warning = None
    if path.stat().st_mode & 0o077:
        warning = f"{path} is readable by others; chmod 600 {path}"
    return Passphrase(passphrase_bytes(lines[0] if lines else ""), warning)


def passphrase_from_sources(passphrase_file: str | os.PathLike | None) -> Passphrase | None:
    """The passphrase from the file when given, else the environment; None without a source."""
    if passphrase_file:
        return passphrase_from_file(passphrase_file)
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        from veilbench.veilcrypt import passphrase_bytes

        return Passphrase(passphrase_bytes(env))
    return None
