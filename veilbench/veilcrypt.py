"""Veil secrets: authenticated encryption of veil files and the public veil fingerprint.

A veil undoes every photo its owner protected with it, so a veil file is a secret.

**Encryption at rest.** An encrypted ``.veil`` file is a zip holding ``meta.json``, a *public*
header (format version, alpha, shape, protector, model names, the veil's fingerprint, cipher and
KDF parameters, salt, nonce), and ``veil.enc``: the whole plain veil file (pixels, identity,
crafting photos' hashes, seed) sealed with AES-256-GCM. The key comes from the passphrase through
scrypt (memory-hard: ``n * r * 128`` bytes per guess, 32 MiB with the defaults). The header is
the AEAD's associated data, so a changed header, a flipped ciphertext bit and a wrong passphrase
all fail the same authentication check, reported as one error.

**Fingerprint.** Derived from the veil's pixels, so it exists for old veil files too:

- the veil *id* (``veil info``, the encrypted header) names a veil file without revealing it;
- a protected PNG carries a *per-photo* tag ``v1 SALT TAG`` with a fresh random salt, where
  ``TAG = HMAC(k_veil, SALT)``. Two photos of the same person carry unrelated tags, so the tag
  does not link photos to one person (a constant tag would hand an attacker the groups of photos
  that the difference and average attacks need), and only the holder of the veil can check it.

Both are keyed hashes of the exact veil: they confirm a bit-exact guess and say nothing about a
near one (an attacker's estimate from averaging photos learns nothing from them). An attacker
who can make bit-exact guesses already holds the veil.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass

import torch

from veilbench.errors import VeilFileError

CIPHER = "AES-256-GCM"
#: The PNG text chunk holding the per-photo fingerprint tag.
PNG_KEY = "veilbench:veil-fingerprint"
_TAG_VERSION = "v1"
_DOMAIN = b"veilbench veil fingerprint v1\0"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: ``n`` (CPU/memory, a power of two), ``r`` (block size), ``p`` (parallelism).

    The defaults (2^15, 8, 1) cost 32 MiB and a fraction of a second per guess: each guess at
    a passphrase costs an attacker the same, and a longer passphrase buys more than a higher
    ``n``. Files record their parameters, so the defaults can grow without breaking old files.
    """

    n: int = 2**15
    r: int = 8
    p: int = 1

    def check(self) -> ScryptParams:
        """Self, if the cost is sane: a forged header must not make reading hang or run out
        of memory before authentication can fail."""
        ok = (
            isinstance(self.n, int)
            and 2**10 <= self.n <= 2**20
            and self.n & (self.n - 1) == 0
            and isinstance(self.r, int)
            and 1 <= self.r <= 32
            and isinstance(self.p, int)
            and 1 <= self.p <= 16
        )
        if not ok:
            raise ValueError(f"scrypt parameters {asdict(self)} are out of range")
        return self


def _crypto():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    except ImportError as exc:  # a declared dependency; only a broken install lacks it
        raise VeilFileError(
            "encrypted veil files need the `cryptography` package: pip install cryptography"
        ) from exc
    return AESGCM, Scrypt


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not base64 text")
    return base64.b64decode(text.encode("ascii"), validate=True)


def _key(passphrase: bytes, salt: bytes, params: ScryptParams) -> bytes:
    _, Scrypt = _crypto()
    kdf = Scrypt(salt=salt, length=32, n=params.n, r=params.r, p=params.p)
    return kdf.derive(passphrase)


def header_bytes(header: dict) -> bytes:
    """The canonical bytes of a header: what is stored and what is authenticated."""
    return json.dumps(header, indent=2, sort_keys=True).encode()


def seal(
    plaintext: bytes, passphrase: bytes, public: dict, params: ScryptParams | None = None
) -> tuple[bytes, bytes]:
    """``(header bytes, ciphertext)``: ``public`` plus the cipher and KDF fields, and the
    AES-GCM encryption of ``plaintext`` authenticated together with that header."""
    if not passphrase:
        raise VeilFileError("the veil passphrase is empty; choose a non-empty one")
    AESGCM, _ = _crypto()
    params = (params or ScryptParams()).check()
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {
        **public,
        "encrypted": True,
        "cipher": CIPHER,
        "kdf": {"name": "scrypt", **asdict(params), "salt": _b64(salt)},
        "nonce": _b64(nonce),
    }
    head = header_bytes(header)
    key = _key(passphrase, salt, params)
    return head, AESGCM(key).encrypt(nonce, plaintext, head)


def kdf_params(header: dict) -> ScryptParams:
    """The scrypt parameters a header names (checked), or ValueError."""
    kdf = header.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise ValueError(f"unknown key derivation {kdf!r}")
    return ScryptParams(kdf.get("n"), kdf.get("r"), kdf.get("p")).check()


def unseal(head: bytes, ciphertext: bytes, passphrase: bytes, path: object) -> bytes:
    """The plaintext of an encrypted veil, or one VeilFileError for a wrong passphrase or a
    changed file (the two cannot be told apart, by design of authenticated encryption)."""
    from cryptography.exceptions import InvalidTag

    AESGCM, _ = _crypto()
    try:
        header = json.loads(head)
        if header.get("cipher") != CIPHER:
            raise ValueError(f"unknown cipher {header.get('cipher')!r}")
        params = kdf_params(header)
        salt, nonce = _unb64(header["kdf"].get("salt")), _unb64(header.get("nonce"))
        if len(nonce) != 12 or len(salt) < 16:
            raise ValueError("salt or nonce has the wrong length")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VeilFileError(f"veil file {path} has a corrupt encryption header ({exc})") from exc
    try:
        return AESGCM(_key(passphrase, salt, params)).decrypt(nonce, ciphertext, head)
    except InvalidTag:
        raise VeilFileError(
            f"veil file {path} cannot be decrypted: wrong passphrase, or the file was changed "
            "since it was written (tampered or corrupt); check the passphrase or restore the "
            "file from a backup"
        ) from None


def _veil_key(pixels: torch.Tensor) -> bytes:
    """The fingerprint key: a hash of the exact pixels (float32, C order) and their shape."""
    arr = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
    h = hashlib.sha256(_DOMAIN)
    h.update(json.dumps(list(arr.shape)).encode())
    h.update(arr.tobytes())
    return h.digest()


def veil_id(pixels: torch.Tensor) -> str:
    """The public id of a veil (32 hex digits): names it, reveals nothing of it."""
    return hmac.new(_veil_key(pixels), b"veil id", hashlib.sha256).hexdigest()[:32]


def photo_tag(pixels: torch.Tensor, salt: bytes | None = None) -> str:
    """A fresh per-photo fingerprint ``"v1 SALT TAG"`` for the PNG text chunk."""
    salt = secrets.token_bytes(16) if salt is None else salt
    tag = hmac.new(_veil_key(pixels), b"photo\0" + salt, hashlib.sha256).hexdigest()[:32]
    return f"{_TAG_VERSION} {salt.hex()} {tag}"


def tag_matches(pixels: torch.Tensor, text: str) -> bool | None:
    """Whether a photo's fingerprint text was made with this veil; None if unreadable."""
    parts = text.split()
    if len(parts) != 3 or parts[0] != _TAG_VERSION:
        return None
    try:
        salt = bytes.fromhex(parts[1])
    except ValueError:
        return None
    return hmac.compare_digest(photo_tag(pixels, salt), text)


def passphrase_bytes(text: str) -> bytes:
    """A passphrase as UTF-8 bytes; an empty one is refused."""
    if not text:
        raise VeilFileError("the veil passphrase is empty; choose a non-empty one")
    return text.encode("utf-8")
