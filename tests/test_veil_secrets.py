"""Veil files as secrets: encryption at rest, passphrase sources, public info, fingerprints.

Veils here are random images saved as veil files (plumbing): what is checked (encryption, file
handling, the fingerprint) does not depend on what a veil fools. Photos are real LFW faces.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from PIL import Image

from veilbench.commands import build_cli
from veilbench.data.images import load_rgb, png_text
from veilbench.errors import VeilFileError
from veilbench.models.base import FaceSpace
from veilbench.passphrase import PASSPHRASE_ENV
from veilbench.veilcrypt import PNG_KEY, ScryptParams, photo_tag, tag_matches
from veilbench.veilfile import (
    Veil,
    VeilLockedError,
    is_encrypted,
    load_veil,
    save_veil,
    veil_info,
)

from . import test_workflow
from .test_workflow import invoke

photos = test_workflow.photos  # the fixture: four real photos of one person, copied

S = FaceSpace().size
PASS = "correct horse battery staple"


def _veil(seed: int = 0) -> Veil:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (3, S, S), generator=g).float()
    return Veil(
        veil=pixels,
        alpha=0.2,
        protector="veil",
        identity="Ada_Lovelace",
        surrogates=[{"name": "sface", "sha256": "ab" * 32}],
        image_sha256=["cd" * 32],
        seed=123456789,
    )


def _rezip(path: Path, change) -> None:
    """Rewrite the archive with ``change(name, data) -> data`` applied to each member: an
    attacker who edits a file keeps the zip itself consistent."""
    with zipfile.ZipFile(path) as z:
        members = {n: change(n, z.read(n)) for n in z.namelist()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _edit_header(path: Path, edit) -> None:
    """Change the public header in place with ``edit(header)``."""

    def change(name: str, data: bytes) -> bytes:
        if name != "meta.json":
            return data
        header = json.loads(data)
        edit(header)
        return json.dumps(header, indent=2, sort_keys=True).encode()

    _rezip(path, change)


def test_encrypted_round_trip_hides_everything_but_the_public_header(tmp_path):
    veil = _veil()
    path = save_veil(tmp_path / "ada.veil", veil, passphrase=PASS.encode())
    assert is_encrypted(path)
    back = load_veil(path, PASS.encode())
    assert torch.equal(back.veil, veil.veil)
    assert (back.identity, back.seed, back.image_sha256) == ("Ada_Lovelace", 123456789, ["cd" * 32])

    raw = path.read_bytes()
    for secret in (b"Ada_Lovelace", b"123456789", b"cd" * 32, b"ab" * 32):
        assert secret not in raw  # name, seed, photo and weight hashes are all inside
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["meta.json", "veil.enc"]
        header = json.loads(z.read("meta.json"))
    assert header["encrypted"] is True and header["format_version"] == 2
    assert header["kdf"]["name"] == "scrypt" and header["kdf"]["n"] == ScryptParams().n
    # The same veil, plain: the fingerprint is a function of the pixels alone.
    plain = save_veil(tmp_path / "plain.veil", veil)
    assert not is_encrypted(plain)
    assert veil_info(plain)["fingerprint"] == header["fingerprint"]

    with pytest.raises(VeilLockedError, match="is encrypted: give its passphrase"):
        load_veil(path)


def test_wrong_passphrase_and_tampering_fail_with_one_clear_error(tmp_path):
    path = save_veil(tmp_path / "ada.veil", _veil(), passphrase=PASS.encode())
    words = "cannot be decrypted: wrong passphrase, or the file was changed"
    with pytest.raises(VeilFileError, match=words):
        load_veil(path, b"correct horse battery stapler")

    original = path.read_bytes()

    def flip_cipher_bit(name: str, data: bytes) -> bytes:
        if name != "veil.enc":
            return data
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x01
        return bytes(flipped)

    _rezip(path, flip_cipher_bit)
    with pytest.raises(VeilFileError, match=words):
        load_veil(path, PASS.encode())

    # The header is authenticated too: a changed alpha is not believed.
    path.write_bytes(original)

    _edit_header(path, lambda h: h.update(alpha=0.3))
    with pytest.raises(VeilFileError, match=words):
        load_veil(path, PASS.encode())

    # A raw bit flip anywhere in the file is caught (by zip's CRC or by the AEAD tag).
    for offset in range(0, len(original), max(1, len(original) // 40)):
        damaged = bytearray(original)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(VeilFileError):
            load_veil(path, PASS.encode())

    # A forged header cannot make reading run out of memory before authentication.
    path.write_bytes(original)

    _edit_header(path, lambda h: h["kdf"].update(n=2**40))
    with pytest.raises(VeilFileError, match="out of range"):
        load_veil(path, PASS.encode())


def test_veil_info_shows_public_metadata_without_a_passphrase(tmp_path):
    path = save_veil(tmp_path / "ada.veil", _veil(), passphrase=PASS.encode())
    shown = invoke("veil", "info", path, env={PASSPHRASE_ENV: None})
    assert shown.exit_code == 0, shown.output
    for text in ("encrypted:      yes (AES-256-GCM)", "scrypt n=32768 r=8 p=1", "alpha:", "sface"):
        assert text in shown.output
    assert "3 x 112 x 112" in shown.output or f"3 x {S} x {S}" in shown.output
    assert "Ada_Lovelace" not in shown.output and "123456789" not in shown.output
    as_json = json.loads(invoke("veil", "info", path, "--json").output)
    assert as_json["fingerprint"] == veil_info(path)["fingerprint"]
    assert "salt" not in as_json["kdf"] and "nonce" not in as_json

    plain = invoke("veil", "info", save_veil(tmp_path / "plain.veil", _veil()))
    assert plain.exit_code == 0 and "encrypted:      NO" in plain.output
    assert "Ada_Lovelace" not in plain.output and "123456789" not in plain.output


def test_passphrase_is_never_a_command_line_value():
    cli = build_cli()
    commands = {
        "craft": cli.commands["craft"],
        "protect": cli.commands["protect"],
        "recover": cli.commands["recover"],
        "veil encrypt": cli.commands["veil"].load().commands["encrypt"],
    }
    for name, command in commands.items():
        options = [
            o
            for p in command.get_params(click.Context(command))
            for o in p.opts
            if "pass" in o.lower()
        ]
        assert options == ["--passphrase-file"], (name, options)
        result = invoke(*name.split(), "--passphrase", PASS)
        assert result.exit_code == 2 and "No such option '--passphrase'" in result.output, name


def test_encrypted_veil_protects_and_recovers_with_the_passphrase_from_env_or_file(
    photos, tmp_path, monkeypatch
):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    veil = save_veil(tmp_path / "ada.veil", _veil(), passphrase=PASS.encode())
    locked = invoke("protect", "--veil", veil, *photos, "-o", tmp_path / "p0")
    assert locked.exit_code == 2 and "is encrypted: give its passphrase" in locked.output
    env = {PASSPHRASE_ENV: PASS}
    out = tmp_path / "p"
    prot = invoke("protect", "--veil", veil, *photos, "-o", out, "--alignment", "center", env=env)
    assert prot.exit_code == 0, prot.output
    protected = sorted((tmp_path / "p").iterdir())

    pfile = tmp_path / "pass.txt"
    pfile.write_text(PASS + "\n")  # one trailing newline, as editors write it
    pfile.chmod(0o600)
    rec = invoke(
        "recover", "--veil", veil, *protected, "-o", tmp_path / "r", "--passphrase-file", pfile
    )
    assert rec.exit_code == 0, rec.output
    from veilbench.data.align import center_crop

    got = load_rgb(tmp_path / "r" / f"{photos[0].stem}.png").astype(int)
    want = np.rint(center_crop(load_rgb(photos[0])).crop).astype(int)
    assert np.abs(got - want).max() <= 3

    pfile.write_text("not it\n")
    pfile.chmod(0o644)
    wrong = invoke(
        "recover", "--veil", veil, *protected, "-o", tmp_path / "r2", "--passphrase-file", pfile
    )
    assert wrong.exit_code == 2 and "wrong passphrase" in wrong.output
    assert "readable by others; chmod 600" in wrong.output
    assert "Traceback" not in wrong.output


def test_recover_with_another_veil_is_refused_by_the_fingerprint(photos, tmp_path):
    mine = _veil(1)
    near = Veil(veil=mine.veil.clone(), alpha=0.2, protector="veil")
    near.veil[0, 0, 0] = (near.veil[0, 0, 0] + 1) % 256  # one grey level at one pixel apart
    mine_path = save_veil(tmp_path / "mine.veil", mine)
    near_path = save_veil(tmp_path / "near.veil", near)
    prot = invoke(
        "protect", "--veil", mine_path, *photos, "-o", tmp_path / "p", "--alignment", "center"
    )
    assert prot.exit_code == 0, prot.output
    protected = sorted((tmp_path / "p").iterdir())

    # Per-photo tags: each matches the veil, and no two are alike (they do not link photos).
    tags = [png_text(p)[PNG_KEY] for p in protected]
    assert len(set(tags)) == len(tags) and all(tag_matches(mine.veil, t) for t in tags)
    assert mine.veil.numpy().tobytes().hex()[:32] not in "".join(tags)

    # A veil so close that range checks pass it is still told apart.
    wrong = invoke("recover", "--veil", near_path, *protected, "-o", tmp_path / "wrong")
    assert wrong.exit_code == 2, wrong.output
    assert "fingerprint does not match this veil" in wrong.output
    assert not (tmp_path / "wrong").exists() or not any((tmp_path / "wrong").iterdir())
    right = invoke("recover", "--veil", mine_path, *protected, "-o", tmp_path / "right")
    assert right.exit_code == 0, right.output

    # Without the chunk (a stripped copy) the near veil passes: the range check is all there is.
    stripped = tmp_path / "stripped.png"
    Image.open(protected[0]).save(stripped)
    assert PNG_KEY not in png_text(stripped)
    old = invoke("recover", "--veil", near_path, stripped, "-o", tmp_path / "old")
    assert old.exit_code == 0, old.output


def test_photo_tag_depends_on_every_pixel_and_salt():
    veil = _veil(3).veil
    salt = bytes(16)
    assert photo_tag(veil, salt) == photo_tag(veil.clone(), salt)
    other = veil.clone()
    other[2, -1, -1] += 1
    assert photo_tag(other, salt) != photo_tag(veil, salt)
    assert tag_matches(veil, "v0 00 11") is None and tag_matches(veil, "garbage") is None


def test_veil_encrypt_command_encrypts_in_place(tmp_path):
    path = save_veil(tmp_path / "ada.veil", _veil())
    before = veil_info(path)["fingerprint"]
    none = invoke("veil", "encrypt", path, env={PASSPHRASE_ENV: None})
    assert none.exit_code == 2 and "no passphrase" in none.output and not is_encrypted(path)
    done = invoke("veil", "encrypt", path, env={PASSPHRASE_ENV: PASS})
    assert done.exit_code == 0, done.output
    assert is_encrypted(path) and before in done.output
    assert torch.equal(load_veil(path, PASS.encode()).veil, _veil().veil)
    again = invoke("veil", "encrypt", path, env={PASSPHRASE_ENV: PASS})
    assert again.exit_code == 2 and "encrypted already" in again.output


def test_random_weight_craft_encrypts_when_a_passphrase_source_is_there(
    tiny_plugins, photos, tmp_path, monkeypatch
):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    args = ["craft", "--images", photos[0].parent, "--model", "tiny_random_a", "--min-images"]
    args += ["4", "--alignment", "center", "--param", "iterations=1", "--param", "hull_iters=2"]
    args += ["--quiet", "-o"]
    enc = invoke(*args, tmp_path / "enc.veil", env={PASSPHRASE_ENV: PASS})
    assert enc.exit_code == 0, enc.output
    assert is_encrypted(tmp_path / "enc.veil") and "(encrypted;" in enc.output
    plain = invoke(*args, tmp_path / "plain.veil", "--no-encrypt", env={PASSPHRASE_ENV: PASS})
    assert plain.exit_code == 0 and not is_encrypted(tmp_path / "plain.veil")
    assert "is not encrypted: whoever copies it" in plain.output
    nosource = invoke(*args, tmp_path / "x.veil", "--encrypt")
    assert nosource.exit_code == 2 and "--encrypt needs a passphrase" in nosource.output
    assert not (tmp_path / "x.veil").exists()
