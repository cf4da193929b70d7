"""``veilbench verify``: the LFW View 2 verification protocol for face models.

veilbench verify --models sface,facenet,dlib_resnet --dataset ../shared/data/lfw-dev
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from veilbench.data.space import ALIGNMENTS


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:6.2f}"


def _summary(doc: dict) -> list[str]:
    p = doc["pairs"]
    lines = [
        f"{doc['dataset']['name']} ({doc['dataset']['alignment']} alignment): "
        f"{p['usable']:,} of {p['total']:,} pairs ({p['matched']:,} matched, "
        f"{p['mismatched']:,} mismatched; {p['missing']:,} with a photo missing)",
        f"{'model':<14} {'acc %':>6} {'± sd':>5} {'bal %':>6} {'EER %':>6} {'AUC':>7} "
        f"{'TAR@1e-2':>8} {'TAR@1e-3':>8} {'no face':>7}",
    ]
    for m in doc["models"]:
        tar = {t["far"]: t["tar"] for t in m["tar_at_far"]}
        sd = m["accuracy"]["std"]
        lines.append(
            f"{m['model']:<14} {_pct(m['accuracy']['mean'])} "
            f"{'  n/a' if sd is None else f'{100 * sd:5.2f}'} "
            f"{_pct(m['balanced_accuracy']['mean'])} {_pct(m['eer'])} {m['auc']:7.4f} "
            f"{_pct(tar.get(1e-2)):>8} {_pct(tar.get(1e-3)):>8} {m['alignment']['no_face']:>7}"
        )
    notes = sorted({t["note"] for m in doc["models"] for t in m["tar_at_far"] if t["note"]})
    return lines + notes


@click.command("verify")
@click.option("--models", default="sface,facenet,dlib_resnet", show_default=True)
@click.option("--dataset", default=None, help="Dataset name or path [LFW].")
@click.option(
    "--pairs",
    default=None,
    type=click.Path(dir_okay=False),
    help="The pair list [pairs.txt beside the dataset; fetched with the LFW archive].",
)
@click.option(
    "--alignment",
    default=None,
    type=click.Choice(ALIGNMENTS),
    help="Override the dataset's alignment.",
)
@click.option("--folds", default=None, type=click.IntRange(min=2), help="Use the first N folds.")
@click.option("--flip", is_flag=True, help="Add each photo's mirror image's embedding.")
@click.option(
    "--all-impostors",
    is_flag=True,
    help="ROC, EER and TAR@FAR over every pair of photos of different people (low FARs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result document.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Write JSON + HTML.")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]))
def verify_command(
    models, dataset, pairs, alignment, folds, flip, all_impostors, as_json, out, device
):
    """Face verification on LFW's View 2 pairs: accuracy, ROC, AUC, EER, TAR@FAR."""
    from veilbench.data.resolve import resolve_dataset
    from veilbench.device import pick_device
    from veilbench.models.base import FaceSpace
    from veilbench.plugins import get_plugins
    from veilbench.verification.run import locate_pairs, verify, write_outputs

    plugins = get_plugins()
    dev = pick_device(device)
    space = FaceSpace()

    def log(message: str) -> None:
        click.echo(message, err=True)

    ds = resolve_dataset(dataset, plugins.registries["datasets"], space).dataset
    if alignment:
        ds.alignment = alignment
    pairs_file = locate_pairs(ds, pairs)
    nets = (
        entry.create(space=space).to(dev).eval()
        for entry in plugins.registries["models"].select(models)
    )
    doc = verify(
        ds,
        nets,
        pairs_file,
        folds=folds,
        flip=flip,
        all_impostors=all_impostors,
        device=str(dev),
        log=log,
    )
    if out:
        for path in write_outputs(doc, Path(out)):
            log(f"wrote {path}")
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo("\n".join(_summary(doc)))
