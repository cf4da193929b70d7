"""Faults: any bytes as a veil file, two processes writing into one folder, kill -9 mid-run.

Runs use a RANDOM-WEIGHT tiny model on drawn faces (plumbing: resuming and file handling do not
depend on what a veil fools); protect uses real LFW photos and random veils.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from functools import cache
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veilbench.errors import VeilFileError
from veilbench.veilcrypt import ScryptParams
from veilbench.veilfile import Veil, load_veil, save_veil, veil_info

REPO = Path(__file__).resolve().parents[1]
CHEAP_KDF = ScryptParams(n=2**10, r=1, p=1)  # the reader's paths, not the KDF's cost


@cache
def _veil_bytes(encrypted: bool, per_image: bool) -> bytes:
    import tempfile

    shape = (2, 3, 16, 16) if per_image else (3, 16, 16)
    pixels = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0)).float()
    veil = Veil(veil=pixels, alpha=0.2, protector="veil", identity="p")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.veil"
        save_veil(path, veil, passphrase=b"pw" if encrypted else None, kdf=CHEAP_KDF)
        return path.read_bytes()


def _read_all_ways(path: Path) -> None:
    """Every reader of a veil file: it works, or it raises VeilFileError (nothing else)."""
    for read in (veil_info, lambda p: load_veil(p), lambda p: load_veil(p, b"pw")):
        try:
            read(path)
        except VeilFileError:
            pass


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    encrypted=st.booleans(),
    per_image=st.booleans(),
    cut=st.integers(min_value=0),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), max_size=8),
    insert=st.binary(max_size=64),
)
def test_veil_reader_raises_only_veil_file_errors_on_damaged_files(
    tmp_path, encrypted, per_image, cut, flips, insert
):
    data = bytearray(_veil_bytes(encrypted, per_image))
    for where, value in flips:
        data[where % len(data)] ^= value
    at = cut % (len(data) + 1)
    damaged = bytes(data[:at]) + insert + bytes(data[at:]) if insert else bytes(data[: at or None])
    path = tmp_path / "damaged.veil"
    path.write_bytes(damaged)
    _read_all_ways(path)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    meta=st.fixed_dictionaries(
        {"format": st.just("veilbench-veil")},
        optional={
            "format_version": st.integers(-1, 3),
            "alpha": st.floats(allow_nan=True),
            "shape": st.lists(st.integers(-1, 20000), max_size=5),
            "protector": _JSON,
            "clip": _JSON,
            "kdf": _JSON,
            "encrypted": st.booleans(),
            "seed": _JSON,
        },
    ),
    members=st.dictionaries(
        st.sampled_from(["veil.png", "veil.npy", "veil-0000.png", "veil.enc", "x"]),
        st.binary(max_size=256),
        max_size=3,
    ),
)
def test_veil_reader_raises_only_veil_file_errors_on_made_up_archives(tmp_path, meta, members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("meta.json", json.dumps(meta, allow_nan=True))
        for name, data in members.items():
            z.writestr(name, data)
    path = tmp_path / "made.veil"
    path.write_bytes(buf.getvalue())
    _read_all_ways(path)


# Two processes protecting into one folder at once.

WORKER = """
import json, sys, time
from pathlib import Path
from click.testing import CliRunner
from veilbench.commands import build_cli

veil, root, order, me, other, reps = sys.argv[1:7]
photos = sorted(str(p) for p in Path(root, "photos").iterdir())
if order == "reversed":
    photos.reverse()
cli, results = build_cli(), []
for i in range(int(reps)):
    Path(root, f"ready-{i}-{me}").touch()
    while not Path(root, f"ready-{i}-{other}").exists():
        time.sleep(0.001)
    out = str(Path(root, f"out-{i}"))
    r = CliRunner().invoke(cli, ["protect", "--veil", veil, *photos, "-o", out,
                                 "--alignment", "center"])
    results.append({"code": r.exit_code, "output": r.output})
print(json.dumps(results))
"""


def _written(result: dict, targets: set[str]) -> set[str]:
    """What a protect call says it wrote: its targets less those it names as skipped."""
    output = result["output"]
    if "no photo was protected" in output or result["code"] == 2:
        return set()
    skipped = set(re.findall(r"^skipped (.+?): ", output, flags=re.M))
    said = re.search(r"protected (\d+)(?: of \d+)? photos", output)
    written = targets - skipped
    assert said and int(said.group(1)) == len(written), output
    return written


def test_two_processes_protecting_into_one_folder_write_exactly_what_they_report(lfw_dev, tmp_path):
    from tests.test_workflow import random_veil

    reps = 10
    (tmp_path / "photos").mkdir()
    people = sorted(p for p in lfw_dev.iterdir() if p.is_dir())
    for photo in [f for person in people[:40] for f in sorted(person.glob("*.jpg"))[:1]]:
        shutil.copy(photo, tmp_path / "photos" / photo.name)
    names = {f"{p.stem}.png" for p in (tmp_path / "photos").iterdir()}
    veil = random_veil(tmp_path / "p.veil", 0)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(veil), str(tmp_path), order, me, other, str(reps)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for order, me, other in (("sorted", "a", "b"), ("reversed", "b", "a"))
    ]
    outputs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    for i in range(reps):
        out = tmp_path / f"out-{i}"
        targets = {str(out / n) for n in names}
        written = [_written(results[i], targets) for results in outputs]
        on_disk = {str(p) for p in out.iterdir()} if out.exists() else set()
        assert on_disk == written[0] | written[1], (i, outputs[0][i], outputs[1][i])
        assert not written[0] & written[1], i  # no file claimed by both
        assert not [f for f in on_disk if ".veilbench-tmp" in f]


# kill -9 at random points of a run, then a rerun: the same results as an uninterrupted run.

RUN = """
import sys
from veilbench.testing import use_plugins
use_plugins()
from veilbench.commands import main
sys.argv = ["veilbench", "run", *sys.argv[1:]]
main()
"""
#: Keys whose values differ between any two runs: clocks, machine, where the output went.
VOLATILE = {"created_utc", "environment", "timings", "out", "cost"}


def _stable(value):
    if isinstance(value, dict):
        return {
            k: _stable(v) for k, v in value.items() if k not in VOLATILE and not k.endswith("_s")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_random_weight_run_killed_at_random_points_then_rerun_equals_an_uninterrupted_run(
    tmp_path,
):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    config = tmp_path / "tiny.toml"
    config.write_text("[protocol]\nmin_images = 6\nn_craft = 3\nn_enrol = 2\nidentities = 2\n")
    env = {**os.environ, "VEILBENCH_CACHE": str(tmp_path / "cache"), "VEILBENCH_PROGRESS": "0"}

    def start(out: Path) -> subprocess.Popen:
        args = ["--models", "tiny_random", "--dataset", "tiny_faces", "--config", str(config),
                "--protector", "veil", "--param", "iterations=2", "--param", "hull_iters=2",
                "--param", "until=fixed", "--adversaries", "", "--quiet",
                "--out", str(out)]  # fmt: skip
        return subprocess.Popen(
            [sys.executable, str(script), *args], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    started = time.monotonic()
    reference = start(tmp_path / "reference")
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err
    whole = time.monotonic() - started
    rng = random.Random(25)  # fixed: the same kill points every time
    out = tmp_path / "killed"
    for _ in range(3):
        proc = start(out)
        time.sleep(rng.uniform(0.1, 0.9) * whole)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    rerun = start(out)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    expected = json.loads((tmp_path / "reference" / "results.json").read_text())
    got = json.loads((out / "results.json").read_text())
    assert _stable(got) == _stable(expected)
    assert not [p for p in out.rglob("*") if p.name.endswith(".veilbench-tmp")]


@pytest.mark.parametrize("mode", ["symlink", "dangling"])
def test_a_symlink_planted_in_the_output_folder_is_never_followed(lfw_dev, tmp_path, mode):
    from tests.test_workflow import PERSON, invoke, random_veil

    photo = tmp_path / "photo.jpg"
    shutil.copy(next((lfw_dev / PERSON).glob("*.jpg")), photo)
    veil = random_veil(tmp_path / "p.veil", 0)
    victim = tmp_path / "victim.txt"
    if mode == "symlink":
        victim.write_text("the user's")
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").symlink_to(victim)
    refused = invoke("protect", "--veil", veil, photo, "-o", out, "--alignment", "center")
    assert refused.exit_code == 2 and "--force" in refused.output, refused.output
    forced = invoke("protect", "--veil", veil, photo, "-o", out, "--alignment", "center",
                    "--force")  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert not (out / "photo.png").is_symlink()  # the link was replaced, not followed
    assert victim.read_text() == "the user's" if mode == "symlink" else not victim.exists()


def test_a_full_disk_mid_write_leaves_the_previous_file_and_says_so(lfw_dev, tmp_path, monkeypatch):
    import errno

    from tests.test_workflow import PERSON, invoke, random_veil

    photo = tmp_path / "photo.jpg"
    shutil.copy(next((lfw_dev / PERSON).glob("*.jpg")), photo)
    veil = random_veil(tmp_path / "p.veil", 0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"the previous file")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("veilbench.files.os.fsync", full)
    result = invoke("protect", "--veil", veil, photo, "-o", out, "--alignment", "center",
                    "--force")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "disk is full" in result.output and "previous file is left" in result.output
    assert (out / "photo.png").read_bytes() == b"the previous file"
    assert [p.name for p in out.iterdir()] == ["photo.png"]
