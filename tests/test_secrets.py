"""No veil can be computed from what a default `veilbench run` writes for sharing.

The attacker decodes every data-URI image in results.json and report.html and tries, for each
veil the run crafted: every image as the veil itself, and every ordered pair of images as an
(original, protected) pair of one photo, which solves ``veil = (p - alpha x) / (1 - alpha)``.
"""

from __future__ import annotations

import base64
import io
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_runner import ARGS, VEIL, run_cli
from veilbench.results import read_results
from veilbench.veilfile import load_veil

_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
#: Share of pixel values within 2 grey levels of the true veil from which an estimate counts as
#: the veil. A same-photo pair gives ~1.0; different photos of one person give 0.1-0.2 on LFW.
LEAK = 0.5


def shared_images(out: Path) -> list[np.ndarray]:
    """Every distinct image embedded in the run's shareable files, as H x W x 3 float."""
    found = set()
    for name in ("results.json", "report.html"):
        found |= set(_URI.findall((out / name).read_text()))
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"), dtype=np.float64)
        for b in sorted(found)
    ]


def best_veil_estimate(out: Path) -> dict[str, float]:
    """Per crafted veil, the best share of its pixels any image or image pair gives back."""
    images = shared_images(out)
    best = {}
    for path in sorted((out / "veils").rglob("*.veil")):
        veil = load_veil(path)
        if veil.per_image:
            continue
        v = veil.veil.permute(1, 2, 0).numpy().astype(np.float64)
        a = veil.alpha
        candidates = [*images] + [
            (p - a * x) / (1 - a)
            for x, p in itertools.permutations(images, 2)
            if x.shape == p.shape == v.shape
        ]
        scores = [float((np.abs(c - v) <= 2).mean()) for c in candidates if c.shape == v.shape]
        best[f"{path.parent.name}/{veil.identity}"] = max(scores, default=0.0)
    return best


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"c{abs(hash(text))}.toml"
    path.write_text(text)
    return str(path)


def test_random_weight_default_run_shares_no_veil_but_secret_samples_do(tiny_plugins, tmp_path):
    out = tmp_path / "run"
    run_cli([*ARGS, *VEIL, "--out", str(out)])
    doc = read_results(out / "results.json")
    assert all(s.records["samples"] for s in doc.results.sets())
    assert not doc.results.samples_contain_secrets
    assert len(shared_images(out)) >= 6  # the samples are there, just harmless
    best = best_veil_estimate(out)
    assert len(best) == 4 and max(best.values()) < LEAK, best
    assert "contains secrets" not in (out / "report.html").read_text()

    # The check is able to fail: asked for explicitly, the secrets are there and flagged.
    secret = tmp_path / "secret"
    config = _config(tmp_path, "[run]\nsecret_samples = true\n")
    run_cli([*ARGS, *VEIL, "--config", config, "--out", str(secret)])
    leaked = best_veil_estimate(secret)
    assert min(leaked.values()) > 0.95, leaked
    doc = read_results(secret / "results.json")
    assert doc.results.samples_contain_secrets is True
    assert any("secret_samples" in w for w in doc.warnings)
    assert "This report contains secrets." in (secret / "report.html").read_text()


@pytest.mark.slow
def test_real_default_run_on_real_faces_shares_no_veil(lfw_dev, tmp_path, monkeypatch):
    """SFace on LFW photos, default samples: no image or pair in the files gives a veil."""
    monkeypatch.setenv("VEILBENCH_CACHE", str(tmp_path / "cache"))
    faces = tmp_path / "faces"
    for person, n in [("Aaron_Peirsol", 4), ("Abdoulaye_Wade", 4), ("AJ_Cook", 1)]:
        (faces / person).mkdir(parents=True)
        for photo in sorted((lfw_dev / person).glob("*.jpg"))[:n]:
            (faces / person / photo.name).symlink_to(photo)
    config = _config(tmp_path, "[protocol]\nmin_images = 4\nn_craft = 2\nn_enrol = 1\n")
    out = tmp_path / "run"
    run_cli(
        [
            "run",
            "--config",
            config,
            "--models",
            "sface",
            "--dataset",
            str(faces),
            "--param",
            "iterations=2",
            "--param",
            "hull_iters=5",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    best = best_veil_estimate(out)
    assert len(best) == 2 and max(best.values()) < LEAK, best
