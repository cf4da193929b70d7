"""The ``veilbench`` command line: the root group and the one table of built-in commands.

Each command is click code only, in its own module of this package, calling library functions.
Every built-in command is a :class:`~veilbench.lazy.LazyCommand` named in :data:`BUILTIN`, so
``veilbench --help`` imports none of their modules (nor torch) and works when a model package is
broken. Plugins add theirs through the ``register_commands`` hook and cannot replace these.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

import veilbench
from veilbench.errors import VeilbenchError
from veilbench.lazy import LazyCommand
from veilbench.plugins import get_plugins

#: name -> (the command as "module:attr", the one line the root --help shows)
BUILTIN: dict[str, tuple[str, str]] = {
    "list": (
        "veilbench.commands.listing:list_command",
        "List registered entries of one kind (models, protectors, measurements, ...).",
    ),
    "plugins": (
        "veilbench.commands.listing:plugins_command",
        "List installed plugins with their package versions and status.",
    ),
    "run": (
        "veilbench.commands.run:run_command",
        "Craft veils and evaluate them: writes OUT/results.json and OUT/report.html.",
    ),
    "report": (
        "veilbench.commands.report:report_command",
        "Re-render the HTML report from a results.json alone.",
    ),
    "compare": (
        "veilbench.commands.compare:compare_command",
        "Compare two results files, metric by metric.",
    ),
    "leaderboard": (
        "veilbench.commands.leaderboard:leaderboard_command",
        "Rank protectors by worst-case privacy over results files (HTML and Markdown).",
    ),
    "results": (
        "veilbench.commands.results:results_group",
        "Results files: their JSON Schema, and checking files against it.",
    ),
    "weights": (
        "veilbench.commands.weights:weights_group",
        "Pretrained weight files: where they are, and fetching them.",
    ),
    "craft": (
        "veilbench.commands.craft:craft_command",
        "Craft one person's veil from their photos.",
    ),
    "protect": (
        "veilbench.commands.protect:protect_command",
        "Apply a veil to any number of the person's photos (no FR model needed).",
    ),
    "recover": (
        "veilbench.commands.recover:recover_command",
        "Recover original photos from protected ones (eq. 14).",
    ),
    "veil": ("veilbench.commands.veil:veil_group", "Veil files: public metadata, encryption."),
    "train": (
        "veilbench.commands.train:train_command",
        "Train a face-recognition model (optionally distilled from a teacher).",
    ),
    "rank1": (
        "veilbench.commands.rank1:rank1_command",
        "Clean 1:N rank-1 of face models (one JSON line per model).",
    ),
    "verify": (
        "veilbench.commands.verify:verify_command",
        "Face verification on LFW's View 2 pairs: accuracy, ROC, AUC, EER, TAR@FAR.",
    ),
}


#: The exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


class VeilbenchGroup(click.Group):
    """Shows a :class:`VeilbenchError` as one line (the fix included); ``--verbose`` for more.

    Usage errors are one line too, and Ctrl-C exits with status 130.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt) as exc:
            if isinstance(exc, click.Abort) and not isinstance(exc.__cause__, KeyboardInterrupt):
                click.echo("Aborted: no input.", err=True)
                sys.exit(1)
            click.echo("Interrupted; every file written so far is complete.", err=True)
            sys.exit(INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VeilbenchError as exc:
            if ctx.obj and ctx.obj.get("verbose") or os.environ.get("VEILBENCH_DEBUG"):
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=VeilbenchGroup)
@click.version_option(veilbench.__version__, prog_name="veilbench")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Craft and benchmark visual face-privacy protections (person-specific veils)."""
    ctx.ensure_object(dict)["verbose"] = verbose
    if verbose:  # plugins loaded before the options were parsed: show why any was skipped
        for info in get_plugins().failures():
            click.echo(f"plugin {info.name!r} failed:\n{info.traceback}", err=True, nl=False)


for _name, (_target, _short_help) in BUILTIN.items():
    cli.add_command(LazyCommand(_name, _target, _short_help))

_MOUNTED: tuple[Any, list[str]] | None = None


def build_cli() -> click.Group:
    """The root group with the current plugins' commands mounted beside the built-in ones.

    When the plugins change (tests install their own), the previous plugins' commands go.
    """
    global _MOUNTED
    plugins = get_plugins()
    if _MOUNTED is None or _MOUNTED[0] is not plugins:
        for name in _MOUNTED[1] if _MOUNTED else []:
            cli.commands.pop(name, None)
        core = set(cli.commands)
        plugins.add_commands(cli)
        _MOUNTED = (plugins, sorted(set(cli.commands) - core))
    return cli


def main() -> None:
    try:
        group = build_cli()
    except VeilbenchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    group(prog_name="veilbench")
