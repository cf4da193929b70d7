"""``veilbench report``: the HTML report from a results file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default=None, type=click.Path(), help="[next to RESULTS]")
def report_command(results: str, output: str | None) -> None:
    """Re-render the HTML report from a results.json alone."""
    from veilbench.report import render_report
    from veilbench.results import read_results

    doc = read_results(results)
    target = Path(output) if output else Path(results).with_name("report.html")
    render_report(doc, target)
    click.echo(str(target))
