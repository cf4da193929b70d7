"""``veilbench veil``: a veil file's public metadata, and encrypting one in place."""

from __future__ import annotations

import json

import click

from veilbench.commands.options import passphrase_file_option, read_passphrase
from veilbench.errors import ConfigError, VeilFileError
from veilbench.passphrase import PASSPHRASE_ENV
from veilbench.veilfile import is_encrypted, load_veil, save_veil, veil_info


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
