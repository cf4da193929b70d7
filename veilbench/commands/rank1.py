"""``veilbench rank1``: clean (unprotected) 1:N identification accuracy of face models.

veilbench rank1 --models sface,facenet,dlib_resnet --dataset ../shared/data/lfw-dev
"""

from __future__ import annotations

import json

import click

from veilbench.data.space import ALIGNMENTS


@click.command("rank1")
@click.option("--models", default="sface,facenet,dlib_resnet", show_default=True)
@click.option("--dataset", required=True, help="Dataset name or path.")
@click.option(
    "--alignment",
    default=None,
    type=click.Choice(ALIGNMENTS),
    help="Override the dataset's alignment.",
)
@click.option("--min-images", default=20, show_default=True, type=click.IntRange(min=2))
@click.option("--enrol", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--distractors", default=2000, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--probes",
    "max_probes",
    default=None,
    type=click.IntRange(min=1),
    help="Use the first N probes.",
)
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]))
def rank1_command(models, dataset, alignment, min_images, enrol, distractors, max_probes, device):
    """Clean 1:N rank-1 of face models (one JSON line per model)."""
    from veilbench.data.resolve import resolve_dataset
    from veilbench.device import pick_device
    from veilbench.evaluation.clean import clean_protocol, clean_rank1
    from veilbench.models.base import FaceSpace
    from veilbench.plugins import get_plugins

    plugins = get_plugins()
    dev = pick_device(device)
    space = FaceSpace()
    ds = resolve_dataset(dataset, plugins.registries["datasets"], space).dataset
    if alignment:
        ds.alignment = alignment
    gallery, queries = clean_protocol(ds, min_images, enrol, distractors, max_probes)
    for entry in plugins.registries["models"].select(models):
        model = entry.create(space=space).to(dev).eval()
        result = clean_rank1(model, ds, gallery, queries, device=str(dev))
        click.echo(json.dumps(result))
