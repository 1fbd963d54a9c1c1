"""2D toy densities generated in code, for demos that need no download.

Each generator is ``(n, noise, generator) -> float32 [n, 2]`` with points lying roughly in [-4, 4]^2;
``noise`` is the standard deviation of Gaussian jitter added to every point.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

ToyGenerator = Callable[[int, float, "torch.Generator | None"], Tensor]


def _uniform(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64)


def _jitter(points: Tensor, noise: float, generator: torch.Generator | None) -> Tensor:
    """Adds N(0, noise^2) to every coordinate and returns float32 ``[n, 2]``."""
    points = points + noise * torch.randn(points.shape, generator=generator, dtype=torch.float64)
    return points.to(torch.float32)


def moons(n: int, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Two interleaving half circles (as scikit-learn's make_moons), scaled to about [-3, 3] x [-1.5, 1.5]."""
    angle = math.pi * _uniform(n, generator)
    lower = torch.rand(n, generator=generator) < 0.5
    x = torch.where(lower, 1 - torch.cos(angle), torch.cos(angle))
    y = torch.where(lower, 0.5 - torch.sin(angle), torch.sin(angle))
    points = 2 * torch.stack([x - 0.5, y - 0.25], dim=1)
    return _jitter(points, noise, generator)


def rings(n: int, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Three concentric circles of radii 1, 2, 3, each with points spread evenly along its length."""
    radii = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    ring = torch.multinomial(radii, n, replacement=True, generator=generator)  # P(ring) ~ circumference
    angle = 2 * math.pi * _uniform(n, generator)
    points = radii[ring, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return _jitter(points, noise, generator)


def checkerboard(n: int, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Uniform on the black squares of a 4 x 4 checkerboard covering [-4, 4]^2."""
    column = torch.randint(4, (n,), generator=generator)
    row = 2 * torch.randint(2, (n,), generator=generator) + column % 2  # a row of the same colour
    corner = torch.stack([column, row], dim=1).to(torch.float64) * 2 - 4
    points = corner + 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64)
    return _jitter(points, noise, generator)


def eight_gaussians(n: int, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Eight Gaussians of standard deviation ``noise`` centred evenly on a circle of radius 3."""
    angle = (math.pi / 4) * torch.randint(8, (n,), generator=generator).to(torch.float64)
    points = 3 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return _jitter(points, noise, generator)


def spiral(n: int, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Two interleaved spiral arms winding 1.5 turns out to radius 3.5, points even along the arms."""
    turn = 3 * math.pi * torch.sqrt(_uniform(n, generator))  # sqrt: density even along the arm
    arm = torch.randint(2, (n,), generator=generator).to(torch.float64)
    radius = 3.5 * turn / (3 * math.pi)
    angle = turn + math.pi * arm
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return _jitter(points, noise, generator)


def _checked(make: Callable[[int, float, torch.Generator | None], Tensor]) -> ToyGenerator:
    """Wraps a generator with the input checks shared by all of them."""

    def checked(n: int, noise: float, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n (number of points) must be a positive integer, got {n!r}")
        if not isinstance(noise, (int, float)) or not 0 <= noise <= 4:
            raise ValueError(f"noise must be a number in [0, 4] (std of the jitter), got {noise!r}")
        return make(n, float(noise), generator)

    checked.__doc__ = make.__doc__
    checked.__name__ = make.__name__
    return checked


TOY_DATASETS: dict[str, ToyGenerator] = {
    "moons": _checked(moons),
    "rings": _checked(rings),
    "checkerboard": _checked(checkerboard),
    "8gaussians": _checked(eight_gaussians),
    "spiral": _checked(spiral),
}

#: A noise level that shows each shape clearly.
DEFAULT_NOISE: dict[str, float] = {
    "moons": 0.1,
    "rings": 0.08,
    "checkerboard": 0.0,
    "8gaussians": 0.3,
    "spiral": 0.1,
}


def make_toy(name: str, n: int, noise: float | None = None, seed: int | None = 0) -> Tensor:
    """``n`` points float32 ``[n, 2]`` from toy dataset ``name``; ``noise=None`` uses DEFAULT_NOISE[name].

    ``seed`` makes the points reproducible; ``None`` draws from torch's global generator.
    """
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {', '.join(TOY_DATASETS)}")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return TOY_DATASETS[name](n, DEFAULT_NOISE[name] if noise is None else noise, generator)
