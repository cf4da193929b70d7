"""The Ray executor: same results as the local one, lost workers retried, bad identities named.

One local Ray cluster (2 CPUs) serves the whole module. The acceptance checks use a real model
(SFace) on real faces (lfw-dev); the failure-isolation check uses a RANDOM-WEIGHT tiny model
(plumbing only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from veilbench.commands import build_cli  # noqa: E402
from veilbench.results import read_results  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    os.environ["VEILBENCH_PROGRESS"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def run_cli(args):
    result = CliRunner().invoke(build_cli(), args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def real_args(lfw_dev, out, executor):
    config = out.parent / "small.toml"  # fewer crafting photos: a short run
    config.write_text("[protocol]\nn_craft = 4\nn_enrol = 3\n")
    return [
        "run",
        "--config",
        str(config),
        "--models",
        "sface",
        "--dataset",
        str(lfw_dev),
        "--identities",
        "2",
        "--max-distractors",
        "20",
        "--param",
        "iterations=8",  # the default schedule (converged, gap-balanced), shortened
        "--profile",
        "full",
        # What the executors must agree on; adversaries and perception add minutes, not checks.
        "--measurements",
        "clean,msr,image_quality,convergence",
        "--adversaries",
        "",
        "--quiet",
        "--executor",
        executor,
        "--out",
        str(out),
    ]


@pytest.fixture(scope="module")
def local_run(lfw_dev, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    run_cli(real_args(lfw_dev, out, "local"))
    return read_results(out / "results.json")


def assert_same_results(a, b):
    assert a.split == b.split and not [p for p in b.problems if p.get("stage") == "craft"]
    for s, t in zip(a.results.sets(), b.results.sets(), strict=True):
        assert t.records["msr"] == s.records["msr"]
        for which in ("protected", "recovered"):
            x = getattr(s.records["image_quality"], which)
            y = getattr(t.records["image_quality"], which)
            # A Ray worker uses 1 thread, the driver 2: float sums differ in their last bits,
            # which sign steps can carry into a few veil pixels.
            assert y.ssim == pytest.approx(x.ssim, rel=1e-3, abs=1e-4)
            assert y.lpips == pytest.approx(x.lpips, rel=1e-3, abs=1e-4)


@pytest.mark.slow
def test_real_run_on_ray_matches_local_and_resumes_on_local(cluster, lfw_dev, local_run, tmp_path):
    out = tmp_path / "ray"
    run_cli(real_args(lfw_dev, out, "ray"))
    doc = read_results(out / "results.json")
    assert doc.config["executor"] == "ray"
    assert_same_results(local_run, doc)
    files = sorted((out / "veils").rglob("*.veil"))
    assert len(files) == 2
    mtimes = [f.stat().st_mtime_ns for f in files]
    run_cli(real_args(lfw_dev, out, "local"))  # the same command on the other executor resumes
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert_same_results(doc, read_results(out / "results.json"))


def craft_workers() -> list:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and p.info["cmdline"][0].startswith("ray::_craft_task")
    ]


@pytest.mark.slow
def test_worker_killed_mid_task_is_retried_and_results_unchanged(
    cluster, lfw_dev, local_run, tmp_path
):
    out = tmp_path / "killed"
    done: list = []
    thread = threading.Thread(target=lambda: done.append(run_cli(real_args(lfw_dev, out, "ray"))))
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        for proc in craft_workers():
            proc.kill()  # SIGKILL: the worker dies mid-task, as on a lost node
            killed = proc.pid
            break
        time.sleep(0.02)
    thread.join(timeout=300)
    assert killed is not None, "no crafting task was seen running"
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == "zombie"
    assert done, "the run did not complete"
    assert_same_results(local_run, read_results(out / "results.json"))


def test_failing_identity_is_named_and_the_others_match_local(cluster):
    """RANDOM-WEIGHT model (plumbing): a NaN photo fails its identity alone, on both executors."""
    from veilbench.executors import LocalExecutor, get_executor
    from veilbench.models.base import FaceSpace
    from veilbench.models.tiny import tiny_random_model
    from veilbench.plugins import get_plugins

    protector = (
        get_plugins()
        .registries["protectors"]
        .get("veil")
        .create(iterations=2, until="fixed", balance="none")
    )
    model = tiny_random_model(FaceSpace(112, 16), seed=1)
    size = model.space.size
    gen = torch.Generator().manual_seed(0)
    inputs = {f"id{i}": torch.rand(2, 3, size, size, generator=gen) * 255 for i in range(3)}
    inputs["broken"] = torch.full((2, 3, size, size), float("nan"))
    kw = {"device": torch.device("cpu"), "seed": 0, "veil_dir": None, "progress": False}
    local = LocalExecutor().craft(protector, [model], inputs, **kw)
    remote = get_executor("ray").craft(protector, [model], inputs, **kw)
    for outcome in (local, remote):
        assert list(outcome.failures) == ["broken"]
        assert "non-finite" in outcome.failures["broken"]
        assert list(outcome.veils) == ["id0", "id1", "id2"]
    for name, veil in local.veils.items():
        assert torch.equal(veil.veil, remote.veils[name].veil)


def test_core_never_imports_ray():
    code = (
        "import sys, veilbench.commands, veilbench.runner, veilbench.executors;"
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_ray_is_one_clear_error(monkeypatch):
    from veilbench.errors import ConfigError
    from veilbench.executors import get_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.delitem(sys.modules, "veilbench.executors.ray", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'veilbench\[ray\]'"):
        get_executor("ray")


TINY = [
    "run",
    "--models",
    "tiny_random_a,tiny_random_b",
    "--dataset",
    "synthetic",
    "--identities",
    "2",
    "--max-distractors",
    "20",
    "--attacks",
    "gaussian",
    "--param",
    "iterations=2",
    "--quiet",
]


def test_evaluation_shards_match_local(cluster, tiny_plugins, tmp_path, monkeypatch):
    """RANDOM-WEIGHT models (plumbing): sharded gallery embedding and per-target evaluation
    give the local executor's numbers, and the workers fill the driver's embedding cache."""
    docs = {}
    for executor in ("local", "ray"):
        monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / f"cache-{executor}"))
        run_cli([*TINY, "--executor", executor, "--out", str(tmp_path / executor)])
        docs[executor] = read_results(tmp_path / executor / "results.json")
    local, remote = docs["local"], docs["ray"]
    computed = remote.timings["gallery_embeddings_computed"]
    assert computed == local.timings["gallery_embeddings_computed"] and min(computed.values()) > 0
    assert local.results.measurements == remote.results.measurements
    for s, t in zip(local.results.sets(), remote.results.sets(), strict=True):
        for name in ("msr", "robustness", "impersonation"):
            assert t.records.get(name) == s.records.get(name), name


def test_protect_with_ray_data_writes_what_local_writes(cluster, lfw_dev, tmp_path):
    """Real photos, a random veil (the blend algebra does not depend on what a veil fools)."""
    import shutil

    from tests.test_workflow import random_veil

    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted((lfw_dev / "Aaron_Peirsol").glob("*.jpg"))[:4]:
        shutil.copy(p, folder / p.name)
    (folder / "broken.jpg").write_bytes(b"not a photo")
    veil = random_veil(tmp_path / "v.veil", 0)
    outputs = {}
    for executor in ("local", "ray"):
        out = tmp_path / f"out-{executor}"
        result = CliRunner().invoke(
            build_cli(),
            ["protect", "--veil", str(veil), str(folder), "-o", str(out), "--executor", executor],
        )
        assert result.exit_code == 1, result.output  # one photo skipped, the rest protected
        assert "broken.jpg" in result.output and "protected 4 of 5" in result.output
        outputs[executor] = {p.name: _pixels_and_tag(p) for p in sorted(out.iterdir())}
    assert len(outputs["ray"]) == 4
    for name, (pixels, tag) in outputs["ray"].items():
        local_pixels, local_tag = outputs["local"][name]
        # Same pixels; each file carries its own fingerprint (a fresh salt per photo).
        assert np.array_equal(pixels, local_pixels) and tag and local_tag and tag != local_tag


def _pixels_and_tag(path):
    from PIL import Image

    from veilbench.veilcrypt import PNG_KEY

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")), im.info.get(PNG_KEY)


def test_executor_setting_is_checked(tmp_path):
    from veilbench.config import build_config, load_config
    from veilbench.errors import ConfigError

    config_file = tmp_path / "veilbench.toml"
    config_file.write_text('[run]\nexecutor = "ray"\nray_address = "auto"\n')
    config = build_config(load_config(config_file), {})
    assert (config.executor, config.ray_address) == ("ray", "auto")
    with pytest.raises(ConfigError, match="executor must be local or ray"):
        build_config({}, {"executor": "dask"})
