"""The user workflow: craft a person's veil once, protect any number of photos, recover them.

    veilbench craft --images photos_of_alice/ --model sface -o alice.veil
    veilbench protect --veil alice.veil new_photo1.jpg new_photo2.jpg -o protected/
    veilbench recover --veil alice.veil protected/*.png -o recovered/

Photos are aligned to the canonical crop the veil lives in (YuNet 5-point alignment by default;
``--alignment none`` for photos that already are canonical crops). Protected photos are written
as lossless PNG: recovery divides by alpha, so every quantisation or compression error in the
protected file comes back 1/alpha = 5 times larger. JPEG output is available with a warning.

Veil files are encrypted when a passphrase source is there (``--passphrase-file``, the
``VEILBENCH_VEIL_PASSPHRASE`` environment variable, or ``--encrypt`` with a prompt in a
terminal); ``protect`` and ``recover`` ask for the passphrase of an encrypted veil the same way.
Each protected PNG carries a per-photo veil fingerprint, so ``recover`` with another veil says
so instead of returning noise.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from veilbench.config import parse_params
from veilbench.data.images import load_rgb, png_text, save_image
from veilbench.errors import ConfigError, DataError, VeilFileError
from veilbench.models.base import FaceSpace
from veilbench.protectors.contract import traits
from veilbench.veilcrypt import PNG_KEY, passphrase_bytes, photo_tag, tag_matches
from veilbench.veilfile import (
    Veil,
    apply_veil,
    convergence_of,
    is_encrypted,
    load_veil,
    out_of_range,
    recover_images,
    remove_stale_temp_files,
    save_veil,
    veil_info,
)

#: The environment variable a veil passphrase may come from (never a command-line value: those
#: end up in shell histories and process lists).
PASSPHRASE_ENV = "VEILBENCH_VEIL_PASSPHRASE"

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _workers() -> int:
    return min(8, (os.cpu_count() or 2) * 2)


def passphrase_file_option(f):
    return click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help=f"A file whose first line is the veil passphrase [or ${PASSPHRASE_ENV}, or a "
        "prompt in a terminal]. The passphrase itself is never a command-line value.",
    )(f)


def read_passphrase(
    passphrase_file: str | None, *, prompt: bool, confirm: bool = False
) -> bytes | None:
    """The passphrase from the file, else the environment, else (``prompt`` and a terminal)
    a hidden prompt; None when there is no source."""
    if passphrase_file:
        path = Path(passphrase_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:  # the message never quotes the content
            raise ConfigError(
                f"--passphrase-file {path} cannot be read as UTF-8 text ({type(exc).__name__})"
            ) from None
        if path.stat().st_mode & 0o077:
            click.echo(f"warning: {path} is readable by others; chmod 600 {path}", err=True)
        return passphrase_bytes(lines[0] if lines else "")
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return passphrase_bytes(env)
    if prompt and sys.stdin is not None and sys.stdin.isatty():
        text = click.prompt(
            "Veil passphrase", hide_input=True, confirmation_prompt=confirm, err=True
        )
        return passphrase_bytes(text)
    return None


def open_veil(veil_file: str, passphrase_file: str | None) -> Veil:
    """A veil file, decrypted with the passphrase from its sources when it is encrypted."""
    if not is_encrypted(veil_file):
        return load_veil(veil_file)
    return load_veil(veil_file, read_passphrase(passphrase_file, prompt=True))


def canonical_crops(
    paths: Sequence[Path],
    space: FaceSpace,
    alignment: str,
    not_a_crop: str = "use --alignment yunet",
) -> tuple[list[Path], np.ndarray, list[dict]]:
    """Canonical crops (uint8 N x S x S x 3) of the usable photos, and the problems of the rest.

    With ``alignment="none"`` a photo of another size is a problem; ``not_a_crop`` says the fix.
    """
    aligner = None
    if alignment != "none":
        from veilbench.data.align import FaceAligner

        aligner = FaceAligner(space, method=alignment)

    def one(path: Path) -> np.ndarray | str:
        try:
            image = load_rgb(path)
            if aligner is None or image.shape[:2] == (space.size, space.size):
                if image.shape[:2] != (space.size, space.size):
                    return f"not a {space.size} px canonical crop ({not_a_crop})"
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


def output_names(paths: Sequence[Path], out: Path, suffix: str, force: bool) -> dict[Path, Path]:
    """One output file per input in ``out``, checked before any work is done.

    Inputs sharing a stem (``a/photo.jpg``, ``a/photo.png``, ``b/photo.jpg``) get ``photo.png``,
    ``photo-2.png``, ``photo-3.png``. An output that is one of the inputs is refused always; one
    that exists already is refused unless ``force``: no call overwrites what it did not create.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder; choose a folder for -o")
    inputs = {p.resolve() for p in paths}
    taken: set[str] = set()
    targets, existing = [], []
    for src in paths:
        stem, n = src.stem, 1
        while (name := f"{stem}{'' if n == 1 else f'-{n}'}{suffix}").lower() in taken:
            n += 1
        taken.add(name.lower())
        target = out / name
        if target.resolve() in inputs:
            raise ConfigError(
                f"{target} would overwrite the input {src}: write into another folder (-o)"
            )
        if target.exists():
            existing.append(target)
        targets.append(target)
    if existing and not force:
        what = f"{existing[0]} and {len(existing) - 1} more" if len(existing) > 1 else existing[0]
        raise ConfigError(
            f"{what} already in {out}: choose another folder (-o), or --force to replace them"
        )
    return dict(zip(paths, targets, strict=True))


def write_images(
    targets: Sequence[Path],
    images: np.ndarray,
    fmt: str,
    quality: int,
    force: bool,
    text: Callable[[], dict[str, str]] | None = None,
) -> list[Path]:
    """Write each image to its target in parallel (PNG lossless); never over a file that
    appeared since the names were checked unless ``force``. ``text()`` gives each PNG's text
    chunks (called once per image)."""

    def one(args: tuple[Path, np.ndarray]) -> Path:
        target, image = args
        try:
            if fmt == "png":
                return save_image(target, image, replace=force, text=text() if text else None)
            return save_image(target, image, fmt="JPEG", quality=quality, replace=force)
        except FileExistsError:
            raise DataError(f"{target} appeared while writing; nothing was overwritten") from None

    with ThreadPoolExecutor(_workers()) as pool:
        return list(pool.map(one, zip(targets, images, strict=True)))


def _finish(verb: str, written: int, total: int, out: str) -> None:
    """The summary line; exit 2 when nothing was written, 1 when some inputs were skipped."""
    if written == 0:
        raise DataError(f"no photo was {verb}: all {total} inputs were skipped (reasons above)")
    if written < total:
        click.echo(
            f"{verb} {written} of {total} photos into {out}; {total - written} skipped (above)"
        )
        sys.exit(1)
    click.echo(f"{verb} {written} photos into {out}")


def backup_name(path: Path) -> Path:
    """The first free ``NAME.bak``, ``NAME.bak2``, ... beside ``path``."""
    n = 1
    while (backup := path.with_name(f"{path.name}.bak{'' if n == 1 else n}")).exists():
        n += 1
    return backup


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
@click.option(
    "--seed",
    default=None,
    type=click.IntRange(0, 2**63 - 1),
    help="Seed of the random start, for reproducible benchmarks [fresh randomness: a veil that "
    "nobody can re-create from the same photos].",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing OUTPUT (the old one is kept as OUTPUT.bak)."
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit with status 3 when the veil did not converge (it is still written).",
)
@click.option(
    "--encrypt/--no-encrypt",
    default=None,
    help="Encrypt the veil file [when a passphrase file or $VEILBENCH_VEIL_PASSPHRASE is there]; "
    "--encrypt without either prompts in a terminal.",
)
@passphrase_file_option
@click.option("--quiet", is_flag=True)
def craft_command(
    images_dir,
    models,
    output,
    protector,
    params,
    alignment,
    min_images,
    device,
    seed,
    force,
    strict,
    encrypt,
    passphrase_file,
    quiet,
):
    """Craft one person's veil from their photos."""
    from veilbench.device import pick_device
    from veilbench.plugins import get_plugins

    output = Path(output)
    if output.exists() and not force:
        raise ConfigError(
            f"{output} already exists and may be the only key to photos protected with it: "
            "choose another name, or --force to replace it (the old file is kept as a backup)"
        )
    if not Path(images_dir).is_dir():
        raise DataError(f"--images {images_dir} is a file; give the folder of the person's photos")
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
    model_entries = [plugins.registries["models"].get(m) for m in models]  # names first
    passphrase = None  # asked before the crafting, which takes minutes
    if encrypt is not False:
        passphrase = read_passphrase(passphrase_file, prompt=bool(encrypt), confirm=True)
        if encrypt and passphrase is None:
            raise ConfigError(
                f"--encrypt needs a passphrase: --passphrase-file, ${PASSPHRASE_ENV}, or a "
                "terminal to type it in"
            )
    dev = pick_device(device)
    remove_stale_temp_files(output.parent, output.name)
    space = FaceSpace()
    paths, crops, problems = canonical_crops(_collect([images_dir]), space, alignment)
    _report(problems)
    if len(paths) < min_images:
        raise DataError(
            f"only {len(paths)} usable photos in {images_dir} (need {min_images}; the paper "
            f"uses 10): add photos of the person or lower --min-images"
        )
    surrogates = [e.create(space=space).to(dev) for e in model_entries]
    name = Path(images_dir).resolve().name
    # Fresh entropy by default: with a fixed seed anyone holding the same photos re-creates the
    # veil. The seed used is stored in the (owner-only) veil file, never printed.
    used_seed = secrets.randbits(63) if seed is None else seed
    veil = prot.craft(
        {name: _to_tensor(crops)}, surrogates, device=dev, seed=used_seed, progress=not quiet
    )[name]
    kept = ""
    if force and output.exists():
        backup = backup_name(output)
        os.link(output, backup)  # the old veil survives under the backup name, mode kept
        kept = f"; the previous veil is kept as {backup}"
        save_veil(output, veil, passphrase=passphrase)
    else:
        save_veil(output, veil, replace=False, passphrase=passphrase)
    start = "fresh random start" if seed is None else f"seed {seed}"
    click.echo(
        f"wrote {output} ({'encrypted' if passphrase else 'NOT encrypted'}; crafted from "
        f"{len(paths)} photos against {', '.join(models)}, {start}){kept}"
    )
    if passphrase is None:
        click.echo(
            f"warning: {output} is not encrypted: whoever copies it can undo every photo "
            f"protected with it; encrypt it with `veilbench veil encrypt {output}`",
            err=True,
        )
    record = convergence_of(veil)
    if record is not None and record.get("converged") is False:
        fits = "; ".join(
            f"{m}: min cosine {f['cosine_min']:.3f} (threshold {f['threshold']:.3f}), "
            f"{f['matched']:.0%} of photos matched"
            for m, f in record.get("surrogates", {}).items()
        )
        click.echo(
            f"warning: the veil did not converge in {record.get('iterations')} iterations "
            f"(cap {record.get('cap')}): {fits}; RMS {record.get('rms')} (target "
            f"{record.get('rms_target')}). The service's model may not recognise photos "
            "protected with it; raise --param max_iterations=N or add photos",
            err=True,
        )
        if strict:
            sys.exit(3)


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
    veil = open_veil(veil_file, passphrase_file)
    all_paths = _collect(images)
    targets = output_names(all_paths, Path(output), SUFFIX[fmt], force)
    if fmt == "jpeg":
        click.echo(
            "warning: JPEG loses detail that recovery amplifies 1/alpha times; "
            "use PNG if the photos are to be recovered",
            err=True,
        )
    space = FaceSpace(margin=0, template_size=veil.size) if alignment == "none" else _space(veil)
    job = ProtectJob(veil, space, alignment, targets, fmt, quality, force)
    from veilbench.executors import get_executor

    runner = get_executor(executor, ray_address, "cpu")
    try:
        parts = runner.map_batches(protect_files, all_paths, shared=job, batch_size=PROTECT_BATCH)
    finally:
        runner.close()
    _report([p for _, problems in parts for p in problems])
    _finish("protected", sum(n for n, _ in parts), len(all_paths), output)


#: Photos per Ray Data batch for ``protect --executor ray``: big enough that a batch's
#: scheduling cost is small next to decoding, aligning and encoding it.
PROTECT_BATCH = 64


@dataclass
class ProtectJob:
    """What protecting any batch of photos needs: the veil, the crop space, output names."""

    veil: Any
    space: FaceSpace
    alignment: str
    targets: dict[Path, Path]
    fmt: str
    quality: int
    force: bool


def protect_files(job: ProtectJob, paths: Sequence[Path]) -> tuple[int, list[dict]]:
    """Read, blend and write one batch of photos; photos written and problems of the rest."""
    kept, crops, problems = canonical_crops(paths, job.space, job.alignment)
    if not kept:
        return 0, problems
    protected = _to_uint8(apply_veil(job.veil, _to_tensor(crops)))
    names = [job.targets[p] for p in kept]

    def fingerprint() -> dict[str, str]:  # a fresh salt per photo: tags do not link photos
        return {PNG_KEY: photo_tag(job.veil.veil)}

    written = write_images(names, protected, job.fmt, job.quality, job.force, fingerprint)
    return len(written), problems


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
@click.option("--force", is_flag=True, help="Replace existing files in OUTPUT (never an input).")
@passphrase_file_option
def recover_command(veil_file, protected, output, gaussian_sigma, force, passphrase_file):
    """Recover original photos from protected ones (eq. 14).

    A photo that this veil did not protect (its fingerprint names another veil; without a
    fingerprint: most values recover outside 0-255; a grey-scale copy) is skipped with the
    reason instead of being "recovered" into noise. Exit codes as for protect.
    """
    veil = open_veil(veil_file, passphrase_file)
    all_paths = _collect(protected)
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
    images = _to_tensor(crops)
    fit = _fitting(veil, paths, crops, images, JPEG_SLACK if jpeg else 1.0)
    _report(problems + [p for p in fit if isinstance(p, dict)])
    keep = [i for i, p in enumerate(fit) if not isinstance(p, dict)]
    recovered = _to_uint8(recover_images(veil, images[keep], gaussian_sigma))
    written = write_images([targets[paths[i]] for i in keep], recovered, "png", 100, force)
    _finish("recovered", len(written), len(all_paths), output)


#: Out-of-range share above which a photo is taken as not protected with the given veil: the
#: right veil gives ~0 (PNG) and at most a few % (JPEG q >= 90), another veil most pixels.
MISMATCH = 0.05
#: Extra tolerance (grey levels after recovery) for JPEG's compression error.
JPEG_SLACK = 12.0
SUFFIX = {"png": ".png", "jpeg": ".jpg"}


def _fitting(veil, paths, crops, images, slack: float) -> list[dict | None]:
    """Per photo None when this veil can recover it, else the problem (as _report shows it)."""
    if not len(paths):
        return []
    grey = (crops[..., 0] == crops[..., 1]).all((1, 2)) & (crops[..., 1] == crops[..., 2]).all(
        (1, 2)
    )
    outside = out_of_range(veil, images, slack) if veil.clip == "veil" else torch.zeros(len(paths))
    problems: list[dict | None] = []
    for path, is_grey, share in zip(paths, grey, outside.tolist(), strict=True):
        tag = png_text(path).get(PNG_KEY)
        if tag is not None and tag_matches(veil.veil, tag) is False:
            reason = (
                "its veil fingerprint does not match this veil: it was protected with another "
                "veil (use that one)"
            )
        elif is_grey:
            reason = (
                "grey-scale, but a protected photo is in colour: recover the PNG that veilbench "
                "protect wrote, not a grey copy"
            )
        elif share > MISMATCH:
            reason = (
                f"{share:.0%} of its values recover outside 0-255: it was protected with another "
                "veil (use that one), or changed since (JPEG, resizing, editing), which no veil "
                "can undo; keep protected photos as the PNGs veilbench protect writes"
            )
        else:
            problems.append(None)
            continue
        problems.append({"file": str(path), "reason": reason})
    return problems


def _space(veil) -> FaceSpace:
    """The default face space when it matches the veil's size, else a margin-free one."""
    default = FaceSpace()
    return default if default.size == veil.size else FaceSpace(margin=0, template_size=veil.size)


@click.group("veil")
def veil_group() -> None:
    """Veil files: public metadata, encryption."""


@veil_group.command("info")
@click.argument("veil_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def veil_info_command(veil_file: str, as_json: bool) -> None:
    """Show a veil file's public metadata (no passphrase needed, nothing decrypted)."""
    info = veil_info(veil_file)
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    kdf = info.get("kdf")
    rows = {
        "format version": info["format_version"],
        "encrypted": f"yes ({info['cipher']})" if info.get("encrypted") else "NO",
        "key derivation": (
            f"{kdf['name']} n={kdf['n']} r={kdf['r']} p={kdf['p']}" if kdf else "none"
        ),
        "fingerprint": info["fingerprint"],
        "protector": info["protector"],
        "alpha": info["alpha"],
        "shape": " x ".join(str(n) for n in info["shape"]),
        "models": ", ".join(s["name"] for s in info["surrogates"]) or "none recorded",
        "created": f"{info['created']} (veilbench {info['version']})",
    }
    for key, value in rows.items():
        click.echo(f"{key + ':':<16}{value}")


@veil_group.command("encrypt")
@click.argument("veil_file", type=click.Path(exists=True, dir_okay=False))
@passphrase_file_option
def veil_encrypt_command(veil_file: str, passphrase_file: str | None) -> None:
    """Encrypt a plain veil file in place (atomically; no plain copy is kept)."""
    if is_encrypted(veil_file):
        raise VeilFileError(f"{veil_file} is encrypted already")
    veil = load_veil(veil_file)
    passphrase = read_passphrase(passphrase_file, prompt=True, confirm=True)
    if passphrase is None:
        raise ConfigError(
            f"no passphrase: give --passphrase-file, set ${PASSPHRASE_ENV}, or run in a terminal"
        )
    save_veil(veil_file, veil, passphrase=passphrase)
    click.echo(f"encrypted {veil_file} (fingerprint {veil_info(veil_file)['fingerprint']})")


COMMANDS = [craft_command, protect_command, recover_command, veil_group]
