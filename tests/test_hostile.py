"""Hostile inputs through the commands: one line and the right exit code, the good photos still
written, nothing of the user's touched.

Real LFW photos where a photo is read; veils are random images saved as veil files, and runs use
RANDOM-WEIGHT tiny models (plumbing: file handling does not depend on what a veil fools).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import test_workflow
from tests.hostile import (
    InflateCounter,
    junk_zip_as_jpeg,
    size_bomb_png,
    truncated,
    zip_bomb_veil,
)
from tests.test_workflow import _craft, invoke, random_veil

photos = test_workflow.photos  # the fixture: four real photos of one person, copied

REPO = Path(__file__).resolve().parents[1]


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


# 1. A header declaring a huge size: skipped with its reason, the rest written.


def test_size_bomb_is_skipped_and_the_good_photos_protected_and_recovered(photos, tmp_path):
    bomb = size_bomb_png(tmp_path / "bomb.png")
    veil = random_veil(tmp_path / "p.veil", 0)
    prot = invoke("protect", "--veil", veil, *photos, bomb, "-o", tmp_path / "prot",
                  "--alignment", "center")  # fmt: skip
    assert prot.exit_code == 1, prot.output
    assert f"protected {len(photos)} of {len(photos) + 1} photos" in prot.output
    assert "bomb.png" in prot.output and "30000 x 30000" in prot.output
    assert "Traceback" not in prot.output
    protected = sorted((tmp_path / "prot").iterdir())
    assert len(protected) == len(photos)
    rec = invoke("recover", "--veil", veil, *protected, bomb, "-o", tmp_path / "rec")
    assert rec.exit_code == 1 and "30000 x 30000" in rec.output, rec.output
    assert len(list((tmp_path / "rec").iterdir())) == len(photos)


def test_random_weight_craft_skips_a_size_bomb_among_the_photos(tiny_plugins, photos, tmp_path):
    size_bomb_png(photos[0].parent / "bomb.png")
    result = _craft(photos[0].parent, tmp_path / "a.veil")
    assert result.exit_code == 0, result.output
    assert "bomb.png" in result.output and "30000 x 30000" in result.output
    assert (tmp_path / "a.veil").is_file()


def test_the_pixel_limit_admits_camera_photos_and_is_configurable(photos, tmp_path, monkeypatch):
    veil = random_veil(tmp_path / "p.veil", 0)
    # 225 megapixels declared: past Pillow's own limit, within veilbench's; this file's pixel
    # data is cut short, so it is skipped as truncated, not for its size.
    camera = size_bomb_png(tmp_path / "camera.png", 15000, 15000)
    result = invoke("protect", "--veil", veil, camera, photos[0], "-o", tmp_path / "a",
                    "--alignment", "center")  # fmt: skip
    assert result.exit_code == 1 and "camera.png cannot be read" in result.output, result.output
    assert "over the limit" not in result.output
    monkeypatch.setenv("VEILBENCH_MAX_IMAGE_PIXELS", "1000")
    small = invoke("protect", "--veil", veil, photos[0], "-o", tmp_path / "b")
    assert small.exit_code == 2 and "VEILBENCH_MAX_IMAGE_PIXELS" in small.output, small.output


# 3. The same photo twice.


def test_the_same_photo_twice_is_protected_once(photos, tmp_path):
    veil = random_veil(tmp_path / "p.veil", 0)
    out = tmp_path / "out"
    result = invoke("protect", "--veil", veil, photos[0], photos[0], "-o", out,
                    "--alignment", "center")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == [f"{photos[0].stem}.png"]


# 4. An output location that cannot be written: one line, exit 2, before any work.


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_output_is_refused_before_any_work(tiny_plugins, photos, tmp_path, where):
    blocker = tmp_path / "existing_file"
    blocker.write_text("keep me")
    out = blocker / "sub" if where == "under_a_file" else Path("/proc/veilbench-out")
    if where == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    veil = random_veil(tmp_path / "p.veil", 0)
    for args in (
        ["protect", "--veil", veil, *photos, "-o", out],
        ["recover", "--veil", veil, *photos, "-o", out],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert str(out) in _one_line_error(result)
    started = time.monotonic()
    crafted = _craft(photos[0].parent, out / "a.veil")
    assert crafted.exit_code == 2 and "wrote" not in crafted.output, crafted.output
    assert str(out) in _one_line_error(crafted)
    assert time.monotonic() - started < 5  # refused before loading models or crafting
    assert blocker.read_text() == "keep me"


# 5. A config file that is not UTF-8.


def test_non_utf8_config_is_one_line(tmp_path):
    config = tmp_path / "veilbench.toml"
    config.write_bytes(b"[run]\nseed = 1\n# caf\xe9 \xff\xfe\n")
    result = invoke("run", "--config", config, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "not UTF-8" in _one_line_error(result)


# 6. A zip-bomb veil file: refused having inflated a few bytes.


@pytest.fixture(scope="module")
def bomb_veil(tmp_path_factory) -> Path:
    return zip_bomb_veil(tmp_path_factory.mktemp("bomb") / "bomb.veil")


def test_zip_bomb_veil_is_refused_before_inflating(bomb_veil, photos, tmp_path, monkeypatch):
    assert bomb_veil.stat().st_size < 2 << 20  # ~1 MB on disk, 1 GiB inflated
    counter = InflateCounter().install(monkeypatch)
    for args in (
        ["protect", "--veil", bomb_veil, photos[0], "-o", tmp_path / "o"],
        ["veil", "info", bomb_veil],
    ):
        result = invoke(*args)
        assert result.exit_code == 2
        assert "over the limit" in _one_line_error(result)
    assert counter.bytes < 4 << 20, counter.bytes


# 8. Smaller: usage errors, numeric ranges.


def test_usage_errors_are_one_line(tmp_path):
    for args in (["run", "--bogus"], ["protect", "-o", tmp_path], ["recover"]):
        result = invoke(*args)
        assert result.exit_code == 2
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "--help" in _one_line_error(result)


@pytest.mark.parametrize(
    "args",
    [
        ["protect", "--quality", "500"],
        ["protect", "--quality", "-5"],
        ["recover", "--gaussian-sigma", "nan"],
        ["recover", "--gaussian-sigma", "-3"],
        ["recover", "--gaussian-sigma", "inf"],
    ],
)
def test_numeric_options_out_of_range_are_refused(photos, tmp_path, args):
    veil = random_veil(tmp_path / "p.veil", 0)
    command, *option = args
    result = invoke(command, "--veil", veil, photos[0], "-o", tmp_path / "o", *option)
    assert result.exit_code == 2, result.output
    assert option[0] in _one_line_error(result)
    assert not (tmp_path / "o").exists()


# A run over a folder with hostile photos (1), cleanup (7), veil folders (8).


def _run_script(tmp_path: Path) -> Path:
    """A script running ``veilbench run`` with the tiny random-weight model and faces."""
    script = tmp_path / "run_tiny.py"
    script.write_text(
        "import sys\n"
        "from veilbench.testing import use_plugins\n"
        "use_plugins()\n"
        "from veilbench.commands import main\n"
        "sys.argv = ['veilbench', 'run', *sys.argv[1:]]\n"
        "main()\n"
    )
    return script


@pytest.fixture
def hostile_dataset(lfw_dev, tmp_path) -> Path:
    """Two real people with six photos each, six one-photo people, and three hostile files."""
    root = tmp_path / "people"
    people = sorted(p for p in lfw_dev.iterdir() if p.is_dir())
    many = [p for p in people if len(list(p.glob("*.jpg"))) >= 6][:2]
    singles = [p for p in people if len(list(p.glob("*.jpg"))) == 1][:6]
    for person in many + singles:
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:6]:
            shutil.copy(photo, root / person.name / photo.name)
    first = root / many[0].name
    size_bomb_png(first / "bomb.png")
    junk_zip_as_jpeg(first / "junk.jpg")
    truncated(first / "cut.jpg", next(first.glob("*_0001.jpg")))
    return root


def test_random_weight_run_lists_hostile_photos_as_problems(
    tiny_plugins, hostile_dataset, tmp_path
):
    out = tmp_path / "out"
    config = tmp_path / "tiny.toml"
    config.write_text("[protocol]\nmin_images = 6\nn_craft = 3\nn_enrol = 2\nidentities = 2\n")
    result = invoke("run", "--models", "tiny_random_a", "--dataset", hostile_dataset,
                    "--config", config, "--out", out, "--protector", "veil",
                    "--param", "iterations=2", "--param", "hull_iters=2",
                    "--param", "until=fixed", "--adversaries", "", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    from veilbench.results import read_results

    doc = read_results(out / "results.json")
    problems = {Path(p["file"]).name: p["reason"] for p in doc.problems if "file" in p}
    assert {"bomb.png", "junk.jpg", "cut.jpg"} <= set(problems), problems
    assert "30000 x 30000" in problems["bomb.png"]


def test_random_weight_run_cleans_only_its_own_temp_files_and_keeps_veils_private(
    tmp_path, monkeypatch
):
    from veilbench.files import TEMP_SUFFIX
    from veilbench.plugins import reset_plugins
    from veilbench.testing import TINY_FACES, TINY_MODEL, run_in_process, use_plugins

    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    theirs = [out / "mydata" / ".photo.jpg.abcdefgh.tmp", out / ".notes.txt.abcdefgh.tmp"]
    for path in theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"the user's")
    ours = out / f".results.json.k3j_x9q2{TEMP_SUFFIX}"  # what a killed run left
    ours.write_bytes(b"half")
    use_plugins()
    try:
        run_in_process(out, models=TINY_MODEL, dataset=TINY_FACES, protector="veil",
                       param={"iterations": 2, "hull_iters": 2, "until": "fixed"},
                       adversaries="")  # fmt: skip
    finally:
        reset_plugins()
    assert all(path.read_bytes() == b"the user's" for path in theirs)
    assert not ours.exists()
    veils = out / "veils"
    for folder in [veils, *veils.iterdir()]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_random_weight_run_interrupted_exits_130(tmp_path):
    # A fixed schedule this long cannot end before the signal, however fast the machine.
    out = tmp_path / "out"
    config = tmp_path / "tiny.toml"
    config.write_text("[protocol]\nmin_images = 6\nn_craft = 3\nn_enrol = 2\nidentities = 2\n")
    env = {**os.environ, "VEILBENCH_CACHE": str(tmp_path / "cache"), "VEILBENCH_PROGRESS": "0"}
    proc = subprocess.Popen(
        [sys.executable, _run_script(tmp_path), "--models", "tiny_random", "--dataset",
         "tiny_faces", "--config", config, "--out", out, "--protector", "veil", "--param",
         "iterations=100000", "--param", "until=fixed", "--adversaries", "", "--quiet"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As from a terminal: a shell's background job (CI's, say) starts with SIGINT ignored,
        # and a child that inherits that never sees the signal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / ".veilbench.lock").exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # never left running past a failure
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("Interrupted"), err
    assert "Traceback" not in err


def test_photos_in_every_mode_are_protected_or_skipped_with_a_reason(photos, tmp_path):
    import numpy as np
    from PIL import Image

    rgb = Image.open(photos[0]).convert("RGB")
    folder = tmp_path / "modes"
    folder.mkdir()
    for mode in ("CMYK", "L", "LA", "P", "RGBA", "1", "I;16", "I", "F"):
        image = rgb.convert("L" if mode in ("I;16", "I", "F") else mode)
        if mode in ("I;16", "I", "F"):
            image = Image.fromarray(np.asarray(image).astype({"F": np.float32}.get(mode, np.int32)))
            image = image.convert(mode) if mode == "I;16" else image
        suffix = ".tif" if mode in ("CMYK", "F", "I") else ".png"
        image.save(folder / f"{mode.replace(';', '')}{suffix}")
    veil = random_veil(tmp_path / "p.veil", 0)
    result = invoke("protect", "--veil", veil, folder, "-o", tmp_path / "out",
                    "--alignment", "center")  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    written = {p.stem for p in (tmp_path / "out").iterdir()}
    skipped = set(re.findall(r"^skipped .*?/(\w+)\.\w+: ", result.output, flags=re.M))
    assert written | skipped == {p.stem for p in folder.iterdir()}, result.output
    assert {"CMYK", "L", "RGBA", "P"} <= written
