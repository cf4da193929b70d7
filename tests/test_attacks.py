from __future__ import annotations

import pytest
import torch

from veilbench.attacks import (
    blur,
    contrast_stretch,
    equalize,
    gaussian,
    invert,
    jpeg,
    median,
    resize,
    salt_pepper,
)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(
        torch.rand(2, 3, 8, 8, generator=g) * 255, size=64, mode="bilinear"
    )
    return smooth


def test_identity_strengths(images):
    for attack in (gaussian(0), salt_pepper(0), median(1), blur(0), resize(1.0), jpeg(100)):
        assert torch.equal(attack(images), images)
    for attack in (contrast_stretch(0), equalize(0), invert(0)):
        assert torch.equal(attack(images), images)


def test_person_processing_stretches_equalises_and_inverts(images):
    dull = 100 + images.round() * 0.2  # a low-contrast photo: values in 100-151
    stretched = contrast_stretch(1.0)(dull)
    for c in range(3):
        q = torch.quantile(stretched[0, c].flatten(), torch.tensor([0.01, 0.99]))
        assert q[0] < 3 and q[1] > 252  # the channel's 1st / 99th percentiles go to 0 / 255
    flat = equalize(1.0)(dull)
    for c in range(3):  # equalised: every quarter of the range holds about a quarter
        counts = torch.histc(flat[0, c], bins=4, min=0, max=255)
        assert counts.min() > 0.15 * counts.sum()
    assert torch.equal(invert(1.0)(images), 255 - images)
    assert torch.allclose(invert(1.0)(invert(1.0)(images)), images)
    assert torch.allclose(invert(0.5)(images), torch.full_like(images, 127.5))


def test_gaussian_noise_has_the_asked_sigma(images):
    flat = torch.full((4, 3, 64, 64), 128.0)
    noise = gaussian(20)(flat) - flat
    assert abs(noise.std().item() - 20) < 0.5
    assert torch.equal(gaussian(20)(images), gaussian(20)(images))  # reproducible
    assert gaussian(150)(images).min() >= 0 and gaussian(150)(images).max() <= 255


def test_salt_pepper_fraction(images):
    out = salt_pepper(0.2)(images)
    changed = ((out == 0) | (out == 255)).all(dim=1).float().mean().item()
    assert 0.17 < changed < 0.23


def test_median_removes_salt_and_pepper(images):
    noisy = salt_pepper(0.05)(images)
    assert (median(3)(noisy) - images).abs().mean() < (noisy - images).abs().mean() / 3
    with pytest.raises(ValueError):
        median(4)


def test_blur_resize_jpeg_lose_detail():
    g = torch.Generator().manual_seed(1)
    sharp = torch.rand(1, 3, 64, 64, generator=g) * 255
    for attack in (blur(2), resize(0.25), jpeg(10)):
        out = attack(sharp)
        assert out.shape == sharp.shape
        assert out.std() < sharp.std() * 0.8
