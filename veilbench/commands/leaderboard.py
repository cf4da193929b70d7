"""``veilbench leaderboard``: protectors ranked by worst-case privacy over results files."""

from __future__ import annotations

from pathlib import Path

import click

from veilbench.errors import ConfigError


def results_file(item: str) -> Path:
    """A results.json as given, or the results.json inside a run's folder."""
    path = Path(item)
    if path.is_dir():
        path = path / "results.json"
        if not path.is_file():
            raise ConfigError(f"{item} is a folder without a results.json")
    elif not path.is_file():
        raise ConfigError(f"{item} does not exist (give a results.json or a run's folder)")
    return path


@click.command("leaderboard")
@click.argument("results", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    default="leaderboard.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML page to write.",
)
@click.option(
    "--markdown",
    "markdown_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the ranking tables as Markdown.",
)
def leaderboard_command(results: tuple[str, ...], out: str, markdown_file: str | None) -> None:
    """Rank protectors by worst-case privacy over results files (HTML and Markdown).

    RESULTS are results.json files or the run folders that hold them. Files measured on
    different datasets, protocols or splits are ranked in separate tables.
    """
    from veilbench.files import write_text_atomic
    from veilbench.leaderboard import build_leaderboard, render_leaderboard_html, render_markdown
    from veilbench.results import read_results

    paths = [results_file(item) for item in results]  # every path checked before any read
    docs = [read_results(p) for p in paths]
    board = build_leaderboard(docs, [str(p) for p in paths])
    click.echo(str(write_text_atomic(out, render_leaderboard_html(board))))
    if markdown_file:
        click.echo(str(write_text_atomic(markdown_file, render_markdown(board))))
