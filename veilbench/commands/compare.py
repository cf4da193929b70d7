"""``veilbench compare``: two results files, metric by metric."""

from __future__ import annotations

import sys

import click


@click.command("compare")
@click.argument("base", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--tolerance",
    default="",
    help="How much worse a metric family may get, e.g. msr=0.02,ssim=0.01,time=0.5 "
    "(defaults: veilbench.compare.tolerance.DEFAULT_TOLERANCE; a plugin's families: 0).",
)
@click.option(
    "--markdown",
    "markdown_file",
    default=None,
    type=click.Path(),
    help="Also write the table as Markdown (for a pull-request comment).",
)
@click.option("--all", "show_all", is_flag=True, help="List unchanged metrics too.")
def compare_command(
    base: str, new: str, tolerance: str, markdown_file: str | None, show_all: bool
) -> None:
    """Compare two results files, metric by metric.

    Exit 1 only when a metric got worse beyond its tolerance. Each metric has a direction:
    white-box MSR and recovery quality should go up; black-box MSR (an attacker's model),
    protected SSIM, impersonation and time should go down.
    """
    from veilbench.compare import compare, parse_tolerance
    from veilbench.results import read_results

    report = compare(read_results(base), read_results(new), parse_tolerance(tolerance))
    click.echo(report.table(show_all=show_all))
    if markdown_file:
        from veilbench.files import write_text_atomic

        write_text_atomic(markdown_file, report.markdown())
    click.echo(report.verdict(), err=True)
    if report.regressions:
        sys.exit(1)
