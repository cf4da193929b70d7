"""Built-in commands beyond the core ones, mounted through ``register_commands`` like a plugin's.

Each is a :class:`~veilbench.lazy.LazyCommand`: ``veilbench --help`` lists them without
importing their modules (and so without importing torch).
"""

from __future__ import annotations

import click

from veilbench import hookimpl
from veilbench.lazy import LazyCommand

#: name -> (the real command as "module:attr", the one line the root --help shows)
COMMANDS: dict[str, tuple[str, str]] = {
    "craft": ("veilbench.workflow:craft_command", "Craft one person's veil from their photos."),
    "protect": (
        "veilbench.workflow:protect_command",
        "Apply a veil to any number of the person's photos (no FR model needed).",
    ),
    "recover": (
        "veilbench.workflow:recover_command",
        "Recover original photos from protected ones (eq. 14).",
    ),
    "veil": ("veilbench.workflow:veil_group", "Veil files: public metadata, encryption."),
    "train": (
        "veilbench_builtins.commands:train_command",
        "Train a face-recognition model (optionally distilled from a teacher).",
    ),
    "rank1": (
        "veilbench.evaluation.clean:rank1_command",
        "Clean 1:N rank-1 of face models (one JSON line per model).",
    ),
}


def _resolve_teacher(name: str):
    """A registered model by name (e.g. ``sface``), as a distillation teacher."""
    from veilbench.plugins import registry

    return registry("models").get(name).create()


def train_command() -> click.Command:
    """``veilbench train`` with registered models usable as teachers."""
    from veilbench.training.train import make_train_command

    return make_train_command(_resolve_teacher)


@hookimpl
def register_commands(cli: click.Group) -> None:
    for name, (target, short_help) in COMMANDS.items():
        cli.add_command(LazyCommand(name, target, short_help))
