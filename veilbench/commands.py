"""Commands that live beside their pipeline stage, mounted on the CLI by ``build_cli``."""

from __future__ import annotations

import click

from veilbench.workflow import COMMANDS as WORKFLOW_COMMANDS


def _resolve_teacher(name: str):
    """A registered model by name (e.g. ``sface``), as a distillation teacher."""
    from veilbench.plugins import registry

    return registry("models").get(name).create()


def _train_command() -> click.Command:
    from veilbench.training.train import make_train_command

    return make_train_command(_resolve_teacher)


def _rank1_command() -> click.Command:
    from veilbench.evaluation.clean import rank1_command

    return rank1_command


COMMANDS: list[click.Command] = [*WORKFLOW_COMMANDS, _train_command(), _rank1_command()]
