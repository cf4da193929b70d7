"""Commands that live beside their pipeline stage, mounted on the CLI by ``build_cli``."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
