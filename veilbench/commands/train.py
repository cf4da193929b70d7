"""``veilbench train``: a face-recognition model trained on an image folder."""

from __future__ import annotations

from pathlib import Path

import click

from veilbench.commands.options import FiniteFloat
from veilbench.data.space import ALIGNMENTS
from veilbench.models.architectures import ARCHITECTURES
from veilbench.training.heads import HEADS


@click.command("train")
@click.option("--arch", required=True, type=click.Choice(sorted(ARCHITECTURES)))
@click.option("--head", default="arcface", show_default=True, type=click.Choice(sorted(HEADS)))
@click.option(
    "--dataset",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of <identity>/<image> photos.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoint to write (.pth).",
)
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=2))
@click.option("--lr", default=1e-3, show_default=True, type=FiniteFloat(0.0, open_min=True))
@click.option(
    "--min-images",
    default=4,
    show_default=True,
    type=click.IntRange(min=2),
    help="Use identities with at least this many photos.",
)
@click.option(
    "--held-out",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Identities kept out of training to score rank-1 on.",
)
@click.option(
    "--alignment",
    default="yunet",
    show_default=True,
    type=click.Choice(ALIGNMENTS),
    help="yunet: detect and align; center: LFW deep-funneled box; none: files are crops.",
)
@click.option("--teacher", default=None, help="Registered model to distil from.")
@click.option("--distill-weight", default=1.0, show_default=True, type=FiniteFloat(0.0))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1))
@click.option(
    "--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])
)
def train_command(
    arch: str,
    head: str,
    dataset: Path,
    out: Path,
    epochs: int,
    batch_size: int,
    lr: float,
    min_images: int,
    held_out: int,
    alignment: str,
    teacher: str | None,
    distill_weight: float,
    seed: int,
    device: str,
) -> None:
    """Train a face-recognition model (optionally distilled from a teacher)."""
    from veilbench.plugins import registry
    from veilbench.training.train import train

    # A registered model by name (e.g. sface) as the distillation teacher.
    teacher_model = registry("models").get(teacher).create() if teacher is not None else None
    result = train(
        arch,
        head,
        dataset,
        out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        min_images_per_identity=min_images,
        held_out_identities=held_out,
        alignment=alignment,
        teacher=teacher_model,
        distill_weight=distill_weight,
        seed=seed,
        device=device,
        log=click.echo,
        progress=True,
    )
    m = result.metrics
    click.echo(f"rank1={m['rank1']:.4f} chance={m['chance']:.4f} checkpoint={out}")
