"""``veilbench recover``: the original photos back from protected ones, with the veil.

veilbench recover --veil alice.veil protected/*.png -o recovered/
"""

from __future__ import annotations

from pathlib import Path

import click

from veilbench.commands.options import (
    FiniteFloat,
    finish,
    open_veil,
    passphrase_file_option,
    report_problems,
)


@click.command("recover")
@click.option("--veil", "veil_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.argument("protected", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False))
@click.option(
    "--gaussian-sigma",
    default=0.0,
    show_default=True,
    type=FiniteFloat(0.0),
    help="Optional Gaussian filter after recovery (the paper's; measured to hurt).",
)
@click.option("--force", is_flag=True, help="Replace existing files in OUTPUT (never an input).")
@passphrase_file_option
def recover_command(veil_file, protected, output, gaussian_sigma, force, passphrase_file):
    """Recover original photos from protected ones (eq. 14).

    A photo that this veil did not protect (its fingerprint names another veil; without a
    fingerprint: most values recover outside 0-255; a grey-scale copy) is skipped with the
    reason instead of being "recovered" into noise. Exit codes as for protect.
    """
    from veilbench.data.crops import canonical_crops
    from veilbench.data.images import write_images
    from veilbench.files import check_writable_folder
    from veilbench.models.base import FaceSpace
    from veilbench.naming import collect_images, output_names
    from veilbench.protectors.photos import JPEG_SLACK, mismatches, to_tensor, to_uint8
    from veilbench.veilfile import recover_images

    check_writable_folder(output, "-o")  # before any work
    veil = open_veil(veil_file, passphrase_file)
    all_paths = collect_images(protected)
    targets = output_names(all_paths, Path(output), ".png", force)
    jpeg = any(p.suffix.lower() in (".jpg", ".jpeg") for p in all_paths)
    if jpeg:
        click.echo(
            "warning: recovering from JPEG: its compression error is amplified 1/alpha times",
            err=True,
        )
    space = FaceSpace(margin=0, template_size=veil.size)
    paths, crops, problems = canonical_crops(
        all_paths, space, "none", "recover takes the protected PNGs as veilbench protect wrote them"
    )
    images = to_tensor(crops)
    fit = mismatches(veil, paths, crops, images, JPEG_SLACK if jpeg else 1.0)
    report_problems(problems + [p for p in fit if isinstance(p, dict)])
    keep = [i for i, p in enumerate(fit) if not isinstance(p, dict)]
    recovered = to_uint8(recover_images(veil, images[keep], gaussian_sigma))
    written, unwritten = write_images(
        [targets[paths[i]] for i in keep], recovered, "png", 100, force
    )
    report_problems(unwritten)
    finish("recovered", len(written), len(all_paths), output)
