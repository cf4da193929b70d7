"""Commands that live beside their pipeline stage, mounted on the CLI by ``build_cli``."""

from __future__ import annotations

import click

from veilbench.workflow import COMMANDS as WORKFLOW_COMMANDS


def _train_command() -> list[click.Command]:
    try:
        from veilbench.training.train import train_command
    except ImportError:  # training needs timm; the rest of the CLI does not
        return []
    return [train_command]


COMMANDS: list[click.Command] = [*WORKFLOW_COMMANDS, *_train_command()]
