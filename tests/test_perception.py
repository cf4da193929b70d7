"""The perception proxies on real LFW faces with the real YuNet detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veilbench.data.align import FaceAligner
from veilbench.data.images import load_rgb
from veilbench.evaluation.perception import face_visibility

PERSON = "Tony_Blair"


@pytest.fixture(scope="module")
def crops(lfw_dev) -> torch.Tensor:
    """Six real photos of one person as canonical crops (N x 3 x S x S, 0-255)."""
    aligner = FaceAligner()
    paths = sorted((lfw_dev / PERSON).glob("*.jpg"))[:6]
    arr = np.stack([aligner.align(load_rgb(p)).crop for p in paths])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).round()


def test_unprotected_faces_are_found_where_they_are(crops):
    same = face_visibility(crops, crops.clone())
    assert same.n == 6 and same.detected.value == same.detected_clean.value == 1.0
    assert same.detected.photos == 6
    assert same.landmark_error is not None and same.landmark_error < 0.01


def test_a_light_veil_leaves_the_face_and_a_heavy_random_one_hides_it(crops):
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, crops.shape, generator=g).float()
    light = face_visibility(crops, (0.8 * crops + 0.2 * noise).round())
    assert light.detected.value >= 5 / 6 and light.landmark_error < 0.1
    heavy = face_visibility(crops, (0.2 * crops + 0.8 * noise).round())  # alpha 0.2, a noise veil
    assert heavy.detected.value <= 1 / 6 and heavy.detected_clean.value == 1.0
    shifted = face_visibility(crops, torch.roll(crops, shifts=20, dims=3))
    assert shifted.landmark_error > 0.2  # the face moved by 20 px: landmarks far from the original
