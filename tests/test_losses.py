"""The veil paper's loss terms on hand-built inputs."""

from __future__ import annotations

import math

import torch

from veilbench.protectors import losses


def test_span_and_hull_projection_of_hand_built_vectors():
    e1, e2 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    feats = torch.stack([e1, e2])
    y = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0], [0.3, 0.3, 0.0]])
    span = losses.project_span(y, losses.span_basis(feats))
    hull = losses.project_hull(y, feats, iters=200)
    torch.testing.assert_close(span, torch.tensor([[1.0, 1, 0], [2, 0, 0], [0.3, 0.3, 0]]))
    # The hull is the segment e1-e2: (1,1,1) lands on its midpoint, (2,0,0) on the end e1, and a
    # point on the segment's line but outside it on the nearest segment point.
    torch.testing.assert_close(hull, torch.tensor([[0.5, 0.5, 0], [1, 0, 0], [0.5, 0.5, 0]]))
    d_span = losses.feature_alignment_loss(y, feats, "span")
    d_hull = losses.feature_alignment_loss(y, feats, "hull", hull_iters=200)
    torch.testing.assert_close(d_span, torch.tensor([1.0, 0.0, 0.0]), atol=1e-3, rtol=0)
    expected = torch.tensor([math.sqrt(1.5), 1.0, math.sqrt(2 * 0.2**2)])
    torch.testing.assert_close(d_hull, expected, atol=1e-4, rtol=0)


def test_hull_projection_keeps_points_inside_the_hull():
    g = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(10, 128, generator=g), dim=1)
    w = torch.rand(4, 10, generator=g)
    inside = (w / w.sum(1, keepdim=True)) @ feats
    torch.testing.assert_close(
        losses.project_hull(inside, feats, iters=500), inside, atol=2e-3, rtol=0
    )


def test_feature_alignment_gradient_is_the_unit_vector_away_from_the_set():
    feats = torch.eye(3)[:2]
    y = torch.tensor([[1.0, 1.0, 1.0]], requires_grad=True)
    losses.feature_alignment_loss(y, feats, "hull", hull_iters=200).sum().backward()
    expected = torch.tensor([[0.5, 0.5, 1.0]]) / math.sqrt(1.5)
    torch.testing.assert_close(y.grad, expected, atol=1e-4, rtol=0)


def test_block_variance_is_zero_on_a_constant_image_and_large_on_noise():
    flat = torch.full((2, 3, 32, 32), 117.0)
    noise = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(0)) * 255
    assert losses.block_variance(flat).abs().max() < 1e-6
    # Uniform noise on [0, 1]: within-block variance ~ 1/12 per channel, so ~0.25 over RGB.
    assert (losses.block_variance(noise) > 0.2).all()


def test_block_stride_matters_and_non_overlapping_blocks_give_the_global_variance():
    x = torch.rand((1, 3, 30, 30), generator=torch.Generator().manual_seed(1)) * 255
    global_var = (x / 255).flatten(2).var(dim=2, unbiased=False).sum(1)
    torch.testing.assert_close(losses.block_variance(x, 3, 3), global_var)
    assert not torch.allclose(losses.block_variance(x, 3, 1), global_var)


def test_visual_loss_has_a_finite_gradient_where_the_images_are_equal():
    x = torch.rand((2, 3, 8, 8)) * 255
    xp = x.clone().requires_grad_(True)
    loss = losses.visual_loss(x, xp)
    loss.sum().backward()
    assert torch.isfinite(xp.grad).all()
    assert loss.max() < 1e-3
    d = losses.visual_loss(x, x + 255.0)  # all 3*8*8 pixels one full scale apart
    torch.testing.assert_close(d, torch.full((2,), math.sqrt(192.0)))
