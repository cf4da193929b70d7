"""``veilbench run``: craft veils, evaluate them, print the summary."""

from __future__ import annotations

import click

from veilbench.data.space import ALIGNMENTS
from veilbench.plugins import get_plugins


@click.command("run")
@click.option(
    "--protector",
    default=None,
    help="Protector(s): a name, a,b,c or all (see `veilbench list protectors`).",
)
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
    "--measurements",
    default=None,
    help="What to measure [all that apply]: a,b | wildcards | -exclusions; "
    "`veilbench list measurements`.",
)
@click.option(
    "--dataset", default=None, help="Dataset name or path (LFW folder/.tgz, image folder)."
)
@click.option(
    "--alignment",
    default=None,
    type=click.Choice(ALIGNMENTS),
    help="Override the dataset's alignment (mtcnn: the landmarks margin-loss models train on).",
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
@click.option("--seed", default=None, type=click.IntRange(0, 2**63 - 1))
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
@click.option(
    "--identities", default=None, type=click.IntRange(min=0), help="Probe identities (0 = all)."
)
@click.option(
    "--max-distractors",
    default=None,
    type=click.IntRange(min=0),
    help="Cap the gallery's distractors.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    help="Protector setting key=value; NAME.key=v with several protectors; "
    "a comma list sweeps (block=4,8,16).",
)
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
    """The console summary: problems on stderr, then every measurement's lines."""
    from veilbench.results.summary import problem_lines, summary_lines

    for line in problem_lines(doc):
        click.echo(line, err=True)
    for line in summary_lines(doc):
        click.echo(line)
