"""``veilbench craft``: one person's veil from their photos, saved to a veil file.

    veilbench craft --images photos_of_alice/ --model sface -o alice.veil

Photos are aligned to the canonical crop the veil lives in (YuNet 5-point alignment by default;
``--alignment none`` for photos that already are canonical crops). The veil file is encrypted
when a passphrase source is there (``--passphrase-file``, ``VEILBENCH_VEIL_PASSPHRASE``, or
``--encrypt`` with a prompt in a terminal).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click

from veilbench.commands.options import passphrase_file_option, read_passphrase, report_problems
from veilbench.data.space import ALIGNMENTS
from veilbench.errors import ConfigError, DataError
from veilbench.passphrase import PASSPHRASE_ENV


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
    type=click.Choice(ALIGNMENTS),
    show_default=True,
)
@click.option(
    "--min-images",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Refuse fewer usable photos.",
)
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
    from veilbench.data.crops import canonical_crops
    from veilbench.device import pick_device
    from veilbench.files import check_writable_folder, remove_stale_temp_files
    from veilbench.models.base import FaceSpace
    from veilbench.naming import collect_images
    from veilbench.plugins import get_plugins
    from veilbench.protectors.photos import to_tensor

    output = Path(output)
    if output.exists() and not force:
        raise ConfigError(
            f"{output} already exists and may be the only key to photos protected with it: "
            "choose another name, or --force to replace it (the old file is kept as a backup)"
        )
    if not Path(images_dir).is_dir():
        raise DataError(f"--images {images_dir} is a file; give the folder of the person's photos")
    check_writable_folder(output.parent, "-o")  # now, not after minutes of crafting
    plugins = get_plugins()
    prot = _veil_protector(plugins, protector, params)
    model_entries = [plugins.registries["models"].get(m) for m in models]  # names first
    passphrase = _passphrase(encrypt, passphrase_file)  # asked before the minutes of crafting
    dev = pick_device(device)
    remove_stale_temp_files(output.parent, output.name)
    space = FaceSpace()
    paths, crops, problems = canonical_crops(collect_images([images_dir]), space, alignment)
    report_problems(problems)
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
        {name: to_tensor(crops)}, surrogates, device=dev, seed=used_seed, progress=not quiet
    )[name]
    kept = _save(output, veil, passphrase, force)
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
    if not _warn_unconverged(veil) and strict:
        sys.exit(3)


def _veil_protector(plugins: Any, protector: str, params: tuple[str, ...]) -> Any:
    """The protector, refused unless it has a reusable, secret, recoverable veil to save."""
    from veilbench.config import parse_params
    from veilbench.protectors.contract import traits

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
    return prot


def _passphrase(encrypt: bool | None, passphrase_file: str | None) -> bytes | None:
    """The passphrase to encrypt with: None for --no-encrypt or (by default) no source."""
    if encrypt is False:
        return None
    passphrase = read_passphrase(passphrase_file, prompt=bool(encrypt), confirm=True)
    if encrypt and passphrase is None:
        raise ConfigError(
            f"--encrypt needs a passphrase: --passphrase-file, ${PASSPHRASE_ENV}, or a "
            "terminal to type it in"
        )
    return passphrase


def _save(output: Path, veil: Any, passphrase: bytes | None, force: bool) -> str:
    """Write the veil file; with ``force`` the old one survives as a backup (said in the text)."""
    from veilbench.naming import backup_name
    from veilbench.veilfile import save_veil

    if force and output.exists():
        backup = backup_name(output)
        os.link(output, backup)  # the old veil survives under the backup name, mode kept
        save_veil(output, veil, passphrase=passphrase)
        return f"; the previous veil is kept as {backup}"
    save_veil(output, veil, replace=False, passphrase=passphrase)
    return ""


def _warn_unconverged(veil: Any) -> bool:
    """Warn when the veil did not converge; False then (True when it did or says nothing)."""
    from veilbench.veilfile import convergence_of

    record = convergence_of(veil)
    if record is None or record.converged is not False:
        return True
    fits = "; ".join(
        f"{m}: min cosine {f.cosine_min:.3f} (threshold {f.threshold:.3f}), "
        f"{f.matched:.0%} of photos matched"
        for m, f in record.surrogates.items()
    )
    click.echo(
        f"warning: the veil did not converge in {record.iterations} iterations "
        f"(cap {record.cap}): {fits}; RMS {record.rms} (target "
        f"{record.rms_target}). The service's model may not recognise photos "
        "protected with it; raise --param max_iterations=N or add photos",
        err=True,
    )
    return False
