"""The user workflow: craft a person's veil once, protect any number of photos, recover them.

    veilbench craft --images photos_of_alice/ --model sface -o alice.veil
    veilbench protect --veil alice.veil new_photo1.jpg new_photo2.jpg -o protected/
    veilbench recover --veil alice.veil protected/*.png -o recovered/

Photos are aligned to the canonical crop the veil lives in (YuNet 5-point alignment by default;
``--alignment none`` for photos that already are canonical crops). Protected photos are written
as lossless PNG: recovery divides by alpha, so every quantisation or compression error in the
protected file comes back 1/alpha = 5 times larger. JPEG output is available with a warning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import numpy as np
import torch

from veilbench.config import parse_params
from veilbench.data.images import load_rgb, save_png
from veilbench.errors import ConfigError, DataError
from veilbench.models.base import FaceSpace
from veilbench.protectors.contract import traits
from veilbench.veilfile import apply_veil, load_veil, recover_images, save_veil

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _workers() -> int:
    return min(8, (os.cpu_count() or 2) * 2)


def canonical_crops(
    paths: Sequence[Path], space: FaceSpace, alignment: str
) -> tuple[list[Path], np.ndarray, list[dict]]:
    """Canonical crops (uint8 N x S x S x 3) of the usable photos, and the problems of the rest."""
    aligner = None
    if alignment != "none":
        from veilbench.data.align import FaceAligner

        aligner = FaceAligner(space, method=alignment)

    def one(path: Path) -> np.ndarray | str:
        try:
            image = load_rgb(path)
            if aligner is None or image.shape[:2] == (space.size, space.size):
                if image.shape[:2] != (space.size, space.size):
                    return f"not a {space.size} px canonical crop (use --alignment yunet)"
                return image
            return np.clip(np.rint(aligner.align(image).crop), 0, 255).astype(np.uint8)
        except DataError as exc:
            return str(exc)

    with ThreadPoolExecutor(_workers()) as pool:
        results = list(pool.map(one, paths))
    pairs = list(zip(paths, results, strict=True))
    kept = [(p, r) for p, r in pairs if not isinstance(r, str)]
    problems = [{"file": str(p), "reason": r} for p, r in pairs if isinstance(r, str)]
    crops = np.stack([r for _, r in kept]) if kept else np.zeros((0, space.size, space.size, 3))
    return [p for p, _ in kept], crops.astype(np.uint8), problems


def _to_tensor(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float()


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return images.clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def _collect(inputs: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            paths.append(p)
        else:
            raise DataError(f"{item} does not exist")
    if not paths:
        raise DataError(f"no images found in {', '.join(inputs)}")
    return paths


def _report(problems: list[dict]) -> None:
    for p in problems:
        click.echo(f"skipped {p['file']}: {p['reason']}", err=True)


def write_images(paths: Sequence[Path], images: np.ndarray, out: Path, fmt: str, quality: int):
    """Write in parallel (PNG by default, lossless); returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)

    def one(args: tuple[Path, np.ndarray]) -> Path:
        src, image = args
        if fmt == "png":
            return save_png(out / f"{src.stem}.png", image)
        from PIL import Image

        target = out / f"{src.stem}.jpg"
        tmp = target.with_suffix(".jpg.tmp")
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)
        os.replace(tmp, target)
        return target

    with ThreadPoolExecutor(_workers()) as pool:
        return list(pool.map(one, zip(paths, images, strict=True)))


@click.command("craft")
@click.option(
    "--images",
    "images_dir",
    required=True,
    type=click.Path(exists=True),
    help="A folder with photos of ONE person (about 10).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Surrogate FR model; repeat for an ensemble veil.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The veil file to write (owner-only permissions).",
)
@click.option("--protector", default="veil", show_default=True)
@click.option("--param", "params", multiple=True, help="Hyper-parameter key=value.")
@click.option(
    "--alignment",
    default="yunet",
    type=click.Choice(["yunet", "center", "none"]),
    show_default=True,
)
@click.option("--min-images", default=5, show_default=True, help="Refuse fewer usable photos.")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--seed", default=0, show_default=True)
@click.option("--quiet", is_flag=True)
def craft_command(
    images_dir, models, output, protector, params, alignment, min_images, device, seed, quiet
):
    """Craft one person's veil from their photos."""
    from veilbench.device import pick_device
    from veilbench.plugins import get_plugins

    plugins = get_plugins()
    prot = plugins.registries["protectors"].get(protector).create(**parse_params(params))
    declared = traits(prot)
    if declared.per_image:
        raise ConfigError(f"protector {protector} is per-image: it has no reusable veil to save")
    if not declared.secret or not declared.recoverable:
        raise ConfigError(
            f"protector {protector} "
            + ("keeps no secret" if not declared.secret else "cannot be undone")
            + ": there is no veil to craft, save or recover with; use it through `veilbench run`"
        )
    space = FaceSpace()
    paths, crops, problems = canonical_crops(_collect([images_dir]), space, alignment)
    _report(problems)
    if len(paths) < min_images:
        raise DataError(
            f"only {len(paths)} usable photos in {images_dir} (need {min_images}; the paper "
            f"uses 10): add photos of the person or lower --min-images"
        )
    dev = pick_device(device)
    surrogates = [plugins.registries["models"].get(m).create(space=space).to(dev) for m in models]
    name = Path(images_dir).resolve().name
    veil = prot.craft(
        {name: _to_tensor(crops)}, surrogates, device=dev, seed=seed, progress=not quiet
    )[name]
    save_veil(output, veil)
    click.echo(f"wrote {output} (crafted from {len(paths)} photos against {', '.join(models)})")


@click.command("protect")
@click.option("--veil", "veil_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False))
@click.option(
    "--alignment",
    default="yunet",
    type=click.Choice(["yunet", "center", "none"]),
    show_default=True,
    help="How photos reach the canonical crop.",
)
@click.option(
    "--format", "fmt", default="png", type=click.Choice(["png", "jpeg"]), show_default=True
)
@click.option("--quality", default=95, show_default=True, help="JPEG quality.")
def protect_command(veil_file, images, output, alignment, fmt, quality):
    """Apply a veil to any number of the person's photos (no FR model needed)."""
    veil = load_veil(veil_file)
    if fmt == "jpeg":
        click.echo(
            "warning: JPEG loses detail that recovery amplifies 1/alpha times; "
            "use PNG if the photos are to be recovered",
            err=True,
        )
    space = FaceSpace(margin=0, template_size=veil.size) if alignment == "none" else _space(veil)
    paths, crops, problems = canonical_crops(_collect(images), space, alignment)
    _report(problems)
    protected = _to_uint8(apply_veil(veil, _to_tensor(crops)))
    written = write_images(paths, protected, Path(output), fmt, quality)
    click.echo(f"protected {len(written)} photos into {output}")


@click.command("recover")
@click.option("--veil", "veil_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.argument("protected", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False))
@click.option(
    "--gaussian-sigma",
    default=0.0,
    show_default=True,
    help="Optional Gaussian filter after recovery (the paper's; measured to hurt).",
)
def recover_command(veil_file, protected, output, gaussian_sigma):
    """Recover original photos from protected ones (eq. 14)."""
    veil = load_veil(veil_file)
    paths = _collect(protected)
    if any(p.suffix.lower() in (".jpg", ".jpeg") for p in paths):
        click.echo(
            "warning: recovering from JPEG: its compression error is amplified 1/alpha times",
            err=True,
        )
    space = FaceSpace(margin=0, template_size=veil.size)
    paths, crops, problems = canonical_crops(paths, space, "none")
    _report(problems)
    recovered = _to_uint8(recover_images(veil, _to_tensor(crops), gaussian_sigma))
    written = write_images(paths, recovered, Path(output), "png", 100)
    click.echo(f"recovered {len(written)} photos into {output}")


def _space(veil) -> FaceSpace:
    """The default face space when it matches the veil's size, else a margin-free one."""
    default = FaceSpace()
    return default if default.size == veil.size else FaceSpace(margin=0, template_size=veil.size)


COMMANDS = [craft_command, protect_command, recover_command]
