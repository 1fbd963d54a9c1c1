"""2D toy densities: shape, range, reproducibility, and the geometry each one promises."""

from __future__ import annotations

import math

import pytest
import torch

from flows.data.toy import DEFAULT_NOISE, TOY_DATASETS, make_toy

NAMES = ["moons", "rings", "checkerboard", "8gaussians", "spiral"]


def test_the_agreed_names_are_all_there() -> None:
    assert sorted(TOY_DATASETS) == sorted(NAMES) == sorted(DEFAULT_NOISE)


@pytest.mark.parametrize("name", NAMES)
def test_points_are_float32_pairs_roughly_in_the_4_box_and_reproducible(name: str) -> None:
    points = make_toy(name, 5000, seed=1)
    assert points.shape == (5000, 2) and points.dtype == torch.float32
    assert bool(torch.isfinite(points).all())
    inside = (points.abs() <= 4).all(1).float().mean()
    assert float(inside) > 0.99 and float(points.abs().max()) < 6
    assert float(points.std(0).min()) > 0.5  # spread out, not a point mass
    assert torch.equal(points, make_toy(name, 5000, seed=1))
    assert not torch.equal(points, make_toy(name, 5000, seed=2))
    generator = torch.Generator().manual_seed(1)
    assert TOY_DATASETS[name](10, 0.1, generator).shape == (10, 2)


def test_moons_lie_on_two_half_circles_of_radius_2() -> None:
    points = make_toy("moons", 2000, noise=0.0).double()
    upper = (points - torch.tensor([-1.0, -0.5]).double()).norm(dim=1)
    lower = (points - torch.tensor([1.0, 0.5]).double()).norm(dim=1)
    on_upper, on_lower = (upper - 2).abs() < 1e-5, (lower - 2).abs() < 1e-5
    assert bool((on_upper | on_lower).all())
    assert 0.4 < float(on_upper.double().mean()) < 0.6


def test_rings_have_radii_1_2_3_with_points_even_along_their_length() -> None:
    radius = make_toy("rings", 30_000, noise=0.0).double().norm(dim=1)
    nearest = radius.round()
    assert torch.allclose(radius, nearest, atol=1e-5)
    shares = torch.stack([(nearest == r).double().mean() for r in (1, 2, 3)])
    torch.testing.assert_close(shares, torch.tensor([1 / 6, 2 / 6, 3 / 6]).double(), atol=0.02, rtol=0)


def test_checkerboard_fills_only_the_black_squares_of_the_4_box() -> None:
    points = make_toy("checkerboard", 20_000, noise=0.0)
    assert float(points.abs().max()) <= 4
    squares = torch.floor(points / 2).long()  # 2 x 2 squares indexed -2..1
    assert bool(((squares[:, 0] + squares[:, 1]) % 2 == 0).all())
    counts = torch.unique(squares, dim=0, return_counts=True)[1]
    assert len(counts) == 8 and int(counts.min()) > 20_000 / 8 * 0.9


def test_eight_gaussians_are_centred_on_a_circle_of_radius_3() -> None:
    centres = torch.unique(make_toy("8gaussians", 4000, noise=0.0).round(decimals=4), dim=0)
    assert len(centres) == 8
    torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 3.0), atol=1e-4, rtol=0)
    noisy = make_toy("8gaussians", 20_000, noise=0.3).double()
    angle = torch.round(torch.atan2(noisy[:, 1], noisy[:, 0]) / (math.pi / 4)) * (math.pi / 4)
    offsets = noisy - 3 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)  # from the nearest centre
    torch.testing.assert_close(offsets.mean(0), torch.zeros(2).double(), atol=0.01, rtol=0)
    torch.testing.assert_close(offsets.std(0), torch.full((2,), 0.3).double(), atol=0.01, rtol=0)


def test_spiral_points_lie_on_two_arms_whose_radius_grows_with_the_angle() -> None:
    points = make_toy("spiral", 3000, noise=0.0).double()
    radius = points.norm(dim=1)
    turn = radius * 3 * math.pi / 3.5  # the angle travelled along the arm
    distances = []
    for arm in (0, 1):
        angle = turn + math.pi * arm
        on_arm = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        distances.append((on_arm - points).norm(dim=1))
    distance = torch.minimum(*distances)
    assert float(distance.max()) < 1e-5 and float(radius.max()) <= 3.5


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown toy dataset 'swissroll'"):
        make_toy("swissroll", 10)
    with pytest.raises(ValueError, match="n \\(number of points\\) must be a positive integer"):
        make_toy("moons", 0)
    with pytest.raises(ValueError, match="noise must be a number in"):
        make_toy("rings", 10, noise=-0.1)
