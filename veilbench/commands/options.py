"""What several commands share: the passphrase option and prompt, problem lines, the summary."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any

import click

from veilbench.errors import DataError
from veilbench.passphrase import PASSPHRASE_ENV, passphrase_from_sources


class FiniteFloat(click.ParamType):
    """A finite number at least ``min`` (above it with ``open_min``): NaN and inf are refused,
    which click's FloatRange lets through."""

    name = "number"

    def __init__(self, min: float = 0.0, open_min: bool = False) -> None:
        self.min, self.open_min = min, open_min

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        low = number <= self.min if self.open_min else number < self.min
        if not math.isfinite(number) or low:
            sign = ">" if self.open_min else ">="
            self.fail(f"{value!r} is not a finite number {sign} {self.min:g}", param, ctx)
        return number


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def passphrase_file_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help=f"A file whose first line is the veil passphrase [or ${PASSPHRASE_ENV}, or a "
        "prompt in a terminal]. The passphrase itself is never a command-line value.",
    )(f)


def read_passphrase(
    passphrase_file: str | None, *, prompt: bool, confirm: bool = False
) -> bytes | None:
    """The passphrase from the file, else the environment, else (``prompt`` and a terminal)
    a hidden prompt; None when there is no source."""
    from veilbench.veilcrypt import passphrase_bytes

    found = passphrase_from_sources(passphrase_file)
    if found is not None:
        if found.warning:
            click.echo(f"warning: {found.warning}", err=True)
        return found.value
    if prompt and sys.stdin is not None and sys.stdin.isatty():
        text = click.prompt(
            "Veil passphrase", hide_input=True, confirmation_prompt=confirm, err=True
        )
        return passphrase_bytes(text)
    return None


def open_veil(veil_file: str, passphrase_file: str | None) -> Any:
    """A veil file, decrypted with the passphrase from its sources when it is encrypted."""
    from veilbench.veilfile import is_encrypted, load_veil

    if not is_encrypted(veil_file):
        return load_veil(veil_file)
    return load_veil(veil_file, read_passphrase(passphrase_file, prompt=True))


def report_problems(problems: list[dict]) -> None:
    for p in problems:
        click.echo(f"skipped {p['file']}: {p['reason']}", err=True)


def finish(verb: str, written: int, total: int, out: str) -> None:
    """The summary line; exit 2 when nothing was written, 1 when some inputs were skipped."""
    if written == 0:
        raise DataError(f"no photo was {verb}: all {total} inputs were skipped (reasons above)")
    if written < total:
        click.echo(
            f"{verb} {written} of {total} photos into {out}; {total - written} skipped (above)"
        )
        sys.exit(1)
    click.echo(f"{verb} {written} photos into {out}")
