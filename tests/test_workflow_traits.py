"""``veilbench craft / protect / recover`` respect what a protector declares (plumbing only).

The surrogate is the RANDOM-WEIGHT tiny model and the photos are drawn faces: these check the
commands' contract, not protection quality.
"""

from __future__ import annotations

import numpy as np
import pytest

from veilbench.data.images import load_rgb
from veilbench.plugins import reset_plugins
from veilbench.testing import TINY_MODEL, invoke, tiny_faces, use_plugins


@pytest.fixture
def photos(tmp_path):
    use_plugins()
    person = tiny_faces().by_identity()
    yield min(refs[0].path.parent for refs in person.values() if len(refs) > 5)
    reset_plugins()


def craft(photos, out, *extra):
    return invoke(
        "craft",
        "--images",
        str(photos),
        "--model",
        TINY_MODEL,
        "-o",
        str(out),
        "--alignment",
        "none",
        "--min-images",
        "3",
        "--quiet",
        *extra,
    )


def test_per_image_protector_has_no_veil_to_craft(photos, tmp_path):
    result = craft(photos, tmp_path / "a.veil", "--protector", "avih")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: protector avih is per-image: it has no reusable veil to save"
    )


def test_craft_protect_recover_round_trip(photos, tmp_path):
    veil = tmp_path / "p.veil"
    result = craft(photos, veil, "--protector", "veil", "--param", "iterations=1")
    assert result.exit_code == 0, result.output
    out = tmp_path / "protected"
    assert (
        invoke(
            "protect", "--veil", str(veil), "--alignment", "none", str(photos), "-o", str(out)
        ).exit_code
        == 0
    )
    back = tmp_path / "recovered"
    assert invoke("recover", "--veil", str(veil), str(out), "-o", str(back)).exit_code == 0
    original = load_rgb(sorted(photos.iterdir())[0]).astype(float)
    recovered = load_rgb(sorted(back.iterdir())[0]).astype(float)
    assert np.abs(original - recovered).max() <= 3  # rounding of the PNG, amplified by 1/alpha
