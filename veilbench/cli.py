"""The ``veilbench`` command line (click).

The core commands live here; every other command (built-in ones included) is added through the
``register_commands`` hook. Nothing here imports torch at module level, so ``veilbench --help``,
``veilbench list`` and ``veilbench plugins`` stay fast and work when a model package is broken.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

import veilbench
from veilbench.errors import VeilbenchError
from veilbench.plugins import get_plugins
from veilbench.registry import KINDS


class VeilbenchGroup(click.Group):
    """Shows a :class:`VeilbenchError` as one line (the fix included); ``--verbose`` for more."""

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


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@cli.command("list")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(kind: str, as_json: bool) -> None:
    """List registered models, protectors, attacks or datasets."""
    entries = list(get_plugins().registries[kind])
    if as_json:
        _echo_json([_describe(e) for e in entries])
        return
    for e in entries:
        click.echo(f"{e.name:<22} {e.metadata.get('description', '')}  [{e.plugin}]")


def _describe(entry) -> dict[str, Any]:
    data = entry.to_dict()
    if entry.kind == "models":
        from veilbench.weights import status

        card = data.pop("card", None)
        if card is not None:  # cheap: builds a card, never loads weights
            try:
                data["card"] = model_card(entry).to_dict()
            except Exception as exc:  # a card must not break listing
                data["card_error"] = f"{type(exc).__name__}: {exc}"
        data["available"] = all(status(w).available for w in entry.metadata.get("weights", []))
    if entry.kind == "protectors":
        from dataclasses import asdict

        from veilbench.lazy import resolve
        from veilbench.protectors.contract import traits

        target = resolve(getattr(entry.factory, "lazy_target", entry.factory))
        if isinstance(target, type):  # a protector class declares its traits; a function cannot
            data["traits"] = asdict(traits(target))
    return data


def model_card(entry) -> Any:
    """The :class:`~veilbench.models.base.ModelCard` a model registration declares."""
    from veilbench.lazy import resolve

    card = resolve(entry.metadata["card"])
    return card if hasattr(card, "to_dict") else card()


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(as_json: bool) -> None:
    """List installed plugins with their package versions and status."""
    infos = get_plugins().plugin_versions()
    if as_json:
        _echo_json(infos)
        return
    for i in infos:
        line = f"{i['name']:<22} {i['package']} {i['version']:<10} {i['status']}"
        click.echo(line + (f": {i['error']}" if i["error"] else ""))
        for warning in i["warnings"]:
            click.echo(f"{'':<22} warning: {warning}")


@cli.command("run")
@click.option("--protector", default=None, help="Protector name (see `veilbench list protectors`).")
@click.option("--models", default=None, help="all | a,b | wildcards | -exclusions.")
@click.option("--surrogates", default=None, help="Also craft one ensemble veil against a,b,c.")
@click.option(
    "--craft-with", default=None, help="Models that craft their own veils [all of --models]."
)
@click.option("--attacks", default=None, help="Attacks for robustness sweeps (same selection).")
@click.option(
    "--adversaries",
    default=None,
    help="Adversaries that try to undo the protection [known_pair,difference,average]; "
    "'' for none; `veilbench list adversaries`.",
)
@click.option(
    "--adversary-k",
    default=None,
    help="Protected photos per person each adversary is given, a comma list [2,5,10].",
)
@click.option(
    "--dataset", default=None, help="Dataset name or path (LFW folder/.tgz, image folder)."
)
@click.option("--out", default=None, type=click.Path(), help="Output folder [reports/latest].")
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="TOML config file [./veilbench.toml when present].",
)
@click.option("--device", default=None, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--seed", default=None, type=int)
@click.option(
    "--executor",
    default=None,
    type=click.Choice(["local", "ray"]),
    help="Where crafting and evaluation run: this process [local] or a Ray cluster "
    "(pip install 'veilbench[ray]').",
)
@click.option(
    "--ray-address",
    default=None,
    help="Ray cluster to join (e.g. ray://head:10001) [the one on this machine, or a new one].",
)
@click.option("--identities", default=None, type=int, help="Probe identities (0 = all).")
@click.option("--max-distractors", default=None, type=int, help="Cap the gallery's distractors.")
@click.option("--param", "params", multiple=True, help="Protector hyper-parameter key=value.")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    help="MODEL=PATH: weights for an architecture (or the ONNX file for `onnx`).",
)
@click.option(
    "--profile",
    default=None,
    type=click.Choice(["auto", "quick", "full"]),
    help="quick: 2 identities, small gallery, short crafting; auto [default]: quick only on "
    "the synthetic fallback.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_command(
    config_file, params, checkpoints, quiet, profile, identities, max_distractors, **flags
):
    """Craft veils and evaluate them: writes OUT/results.json and OUT/report.html."""
    from veilbench.config import build_config, load_config, parse_params
    from veilbench.outdir import claim_output
    from veilbench.validation import validate_run

    values = load_config(config_file)
    flags["protocol.identities"] = identities
    flags["protocol.max_distractors"] = max_distractors
    if params:
        flags["protector_params"] = {**values.get("protector_params", {}), **parse_params(params)}
    if quiet:
        flags["progress"] = False
    flags["profile"] = profile
    config = build_config(values, flags)
    ckpts = dict(_split_pair(c) for c in checkpoints)
    validate_run(config, get_plugins(), ckpts)  # every name and --param before heavy work
    from veilbench.runner import run

    with claim_output(config.out):
        doc = run(config, checkpoints=ckpts)
    _print_summary(doc)


def _split_pair(text: str) -> tuple[str, str]:
    from veilbench.errors import ConfigError

    if "=" not in text:
        raise ConfigError(f"--checkpoint takes MODEL=PATH, got {text!r}")
    name, path = text.split("=", 1)
    return name.strip(), path.strip()


def _print_summary(doc) -> None:
    """The console summary of a :class:`~veilbench.results.ResultsDocument`."""
    for warning in doc.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    problems = [p for p in doc.problems if isinstance(p, dict) and "file" in p]
    for p in problems[:20]:
        click.echo(f"skipped {p['file']}: {p.get('reason', '')}", err=True)
    if len(problems) > 20:
        click.echo(f"... and {len(problems) - 20} more (results.json: problems)", err=True)
    for p in doc.problems:
        if isinstance(p, dict) and p.get("stage") == "craft":
            click.echo(f"not crafted {p['identity']} ({p['surrogates']}): {p['reason']}", err=True)
    click.echo("MSR (rows: surrogate; columns: target, * = white-box; held-out photos)")
    for key, s in doc.results.surrogates.items():
        cells = "  ".join(
            f"{t}{'*' if s.white_box(t) else ''}={_num(c['held_out'].msr)}"
            for t, c in s.msr.items()
        )
        missed = s.unconverged()
        # A white-box figure from unconverged veils is the optimiser's, not a privacy result.
        flag = f"  ({len(missed)}/{len(s.convergence)} veils UNCONVERGED)" if missed else ""
        click.echo(f"  {key:<24} {cells}{flag}")
    for key, rates in doc.results.privacy().items():
        r = rates["held_out"]
        click.echo(
            f"  {key:<24} service MSR {_num(r.service_msr)} | attacker MSR {_num(r.attacker_msr)}"
            f" ({', '.join(r.attacker_models) or 'no other model'})"
        )
        if r.best_adversary is not None:
            click.echo(
                f"  {key:<24} under attack: {r.best_adversary} reconstructions re-identified by "
                f"the attacker's model: rank-1 {_num(r.reconstruction_rank1)}"
            )
    for key, s in doc.results.surrogates.items():
        p, r = s.image_metrics.protected, s.image_metrics.recovered
        recovered = f"recovered SSIM {_num(r.ssim)}" if r else "no recovery"
        click.echo(f"  {key:<24} protected SSIM {_num(p.ssim)} LPIPS {_num(p.lpips)} | {recovered}")
    for key, s in doc.results.surrogates.items():
        seen = s.perception
        if seen is None or seen.face is None:
            continue
        after = " ".join(
            f"{name}={_num(s.attacker_mean(c.protected))}" for name, c in seen.processed.items()
        )
        click.echo(
            f"  {key:<24} face found in {_num(seen.face.detected)} of protected photos "
            f"({_num(seen.face.detected_clean)} of originals) | attacker rank-1 after {after}"
        )


def _num(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.2f}"


@cli.command("report")
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


@cli.command("compare")
@click.argument("base", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--tolerance",
    default="",
    help="How much worse a metric family may get, e.g. msr=0.02,ssim=0.01,time=0.5 "
    "(defaults: veilbench.results.DEFAULT_TOLERANCE).",
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
    """Compare two results files; exit 1 only when a metric got worse beyond its tolerance.

    Each metric has a direction: white-box MSR and recovery quality should go up; black-box
    MSR (an attacker's model), protected SSIM, impersonation and time should go down.
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


@cli.group("weights")
def weights_group() -> None:
    """Pretrained weight files: where they are, and fetching them."""


@weights_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def weights_list(as_json: bool) -> None:
    """List known weight files, their sha256 and whether they are on disk."""
    from veilbench.weights import KNOWN_WEIGHTS, status

    rows = []
    for w in KNOWN_WEIGHTS.values():
        s = status(w)
        rows.append(
            {
                "name": w.name,
                "sha256": w.sha256,
                "size": w.size,
                "licence": w.licence,
                "path": str(s.path) if s.path else None,
                "status": s.reason,
                "sources": w.describe_sources(),
            }
        )
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<44} {r['status']}")


@weights_group.command("fetch")
@click.argument("names", nargs=-1, required=True)
def weights_fetch(names: tuple[str, ...]) -> None:
    """Fetch weight files by name (or `all`) into the cache, checking sha256."""
    from veilbench.errors import ConfigError
    from veilbench.weights import KNOWN_WEIGHTS, resolve

    wanted = list(KNOWN_WEIGHTS) if "all" in names else list(names)
    for name in wanted:
        if name not in KNOWN_WEIGHTS:
            raise ConfigError(f"unknown weight file {name!r}; known: {', '.join(KNOWN_WEIGHTS)}")
        click.echo(f"{name}: {resolve(KNOWN_WEIGHTS[name])}")


_MOUNTED: tuple[Any, list[str]] | None = None


def build_cli() -> click.Group:
    """The root group with the current plugins' commands (built-in ones included) mounted.

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
    group(prog_name="veilbench")
