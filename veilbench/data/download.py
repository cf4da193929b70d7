"""Downloading a dataset archive from a list of mirrors: resumable, md5-checked, atomic.

Each mirror is tried in order. A partial download (``TARGET.part``) is resumed with an HTTP
``Range`` request when the server supports it and restarted when it does not. The finished file
must match the published md5, whichever mirror served it, so a mirror cannot change the data;
only then is it renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from veilbench.errors import DataError

CHUNK = 1 << 20


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fetch_into(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (resuming), or rewrite it when resuming is refused."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:  # 416: the part is already complete
            raise
        return
    with response:
        resumed = have and response.status == 206
        with open(part, "ab" if resumed else "wb") as f:
            while block := response.read(CHUNK):
                f.write(block)


def download(
    urls: Sequence[str],
    target: Path,
    md5: str,
    *,
    timeout: float = 30.0,
    log: Callable[[str], None] = lambda message: None,
) -> Path:
    """Fetch ``target`` from the first mirror that serves the right bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    failures = []
    for url in urls:
        log(f"downloading {target.name} from {url}")
        try:
            _fetch_into(url, part, timeout)
        except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {exc}")
            continue  # keep the part: the next mirror resumes it (the md5 guards the result)
        got = md5_of(part)
        if got == md5:
            os.replace(part, target)
            return target
        failures.append(f"{url}: md5 {got}, expected {md5}")
        part.unlink(missing_ok=True)  # wrong bytes: the next mirror starts from scratch
    raise DataError(
        f"could not download {target.name} from any mirror ("
        + "; ".join(failures)
        + f"); fetch it yourself and pass --dataset PATH (md5 {md5})"
    )
