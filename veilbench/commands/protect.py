"""``veilbench protect``: apply a saved veil to any number of the person's photos.

veilbench protect --veil alice.veil new_photo1.jpg new_photo2.jpg -o protected/
"""

from __future__ import annotations

from pathlib import Path

import click

from veilbench.commands.options import (
    finish,
    open_veil,
    passphrase_file_option,
    report_problems,
)
from veilbench.data.space import ALIGNMENTS


@click.command("protect")
@click.option("--veil", "veil_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False))
@click.option(
    "--alignment",
    default="yunet",
    type=click.Choice(ALIGNMENTS),
    show_default=True,
    help="How photos reach the canonical crop.",
)
@click.option(
    "--format", "fmt", default="png", type=click.Choice(["png", "jpeg"]), show_default=True
)
@click.option(
    "--quality", default=95, show_default=True, type=click.IntRange(1, 100), help="JPEG quality."
)
@click.option("--force", is_flag=True, help="Replace existing files in OUTPUT (never an input).")
@click.option(
    "--executor",
    default="local",
    show_default=True,
    type=click.Choice(["local", "ray"]),
    help="ray: read, blend and write in batches with Ray Data across a cluster "
    "(OUTPUT on a filesystem every node sees).",
)
@click.option("--ray-address", default=None, help="Ray cluster to join [this machine's].")
@passphrase_file_option
def protect_command(
    veil_file,
    images,
    output,
    alignment,
    fmt,
    quality,
    force,
    executor,
    ray_address,
    passphrase_file,
):
    """Apply a veil to any number of the person's photos (no FR model needed).

    Each PNG carries a per-photo veil fingerprint (a text chunk) that only the veil's holder
    can check and that does not link photos to each other. Exit 0: every photo protected;
    1: some were skipped (listed); 2: none, or bad input.
    """
    from veilbench.executors import get_executor
    from veilbench.files import check_writable_folder
    from veilbench.models.base import FaceSpace
    from veilbench.naming import SUFFIX, collect_images, output_names
    from veilbench.protectors.photos import PROTECT_BATCH, ProtectJob, protect_files, veil_space

    check_writable_folder(output, "-o")  # before any work
    veil = open_veil(veil_file, passphrase_file)
    all_paths = collect_images(images)
    targets = output_names(all_paths, Path(output), SUFFIX[fmt], force)
    if fmt == "jpeg":
        click.echo(
            "warning: JPEG loses detail that recovery amplifies 1/alpha times; "
            "use PNG if the photos are to be recovered",
            err=True,
        )
    if alignment == "none":
        space = FaceSpace(margin=0, template_size=veil.size)
    else:
        space = veil_space(veil)
    job = ProtectJob(veil, space, alignment, targets, fmt, quality, force)
    runner = get_executor(executor, ray_address, "cpu")
    try:
        parts = runner.map_batches(protect_files, all_paths, shared=job, batch_size=PROTECT_BATCH)
    finally:
        runner.close()
    report_problems([p for _, problems in parts for p in problems])
    finish("protected", sum(n for n, _ in parts), len(all_paths), output)
