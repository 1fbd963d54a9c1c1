"""The playground's targets: toy points, CSV upload checks, drawn points and the reference levels."""

from __future__ import annotations

import math

import pytest
import torch

from dashboard.playground import data


@pytest.mark.parametrize("target", list(data.TOY_TARGETS))
def test_every_toy_target_generates_reproducible_points_on_the_canvas(target: str) -> None:
    points = data.toy_points(target, 700, data.default_noise(target), seed=3)
    assert points.shape == (700, 2) and points.dtype == torch.float32
    assert torch.isfinite(points).all()
    assert (points.abs() < data.CANVAS).float().mean() > 0.99
    assert torch.equal(points, data.toy_points(target, 700, data.default_noise(target), seed=3))
    assert not torch.equal(points, data.toy_points(target, 700, data.default_noise(target), seed=4))


def test_a_csv_with_header_is_centred_and_scaled_keeping_its_shape() -> None:
    rows = [(10 + 2 * i, -5 + 0.5 * i * i) for i in range(40)]
    text = "x,y\n" + "\n".join(f"{x},{y}" for x, y in rows)
    parsed = data.parse_points_csv(text.encode())
    raw = torch.tensor(rows, dtype=torch.float64)
    assert parsed.columns == ("x", "y")
    assert parsed.points.shape == (40, 2)
    assert torch.allclose(parsed.points.double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5)
    # One factor for both axes: the scaled points are an exact similarity transform of the originals.
    expected = (raw - raw.mean(0)) * parsed.scale
    assert torch.allclose(parsed.points.double(), expected, atol=1e-4)
    assert math.isclose(
        float(parsed.points.double().var(0, unbiased=False).mean().sqrt()), data.UPLOAD_STD, rel_tol=1e-5
    )


def _rows(count: int) -> str:
    return "\n".join(f"{i},{i * i % 7}" for i in range(count))


@pytest.mark.parametrize(
    ("text", "first_point"),
    [
        ("\n".join(f"{i} {i * i % 7}" for i in range(12)), (0.0, 0.0)),  # spaces, no header
        ("a;y;x\n" + "\n".join(f"0;{i};{10 + i}" for i in range(12)), (10.0, 0.0)),  # named columns
        ("y\tx\n" + "\n".join(f"{i}\t{-i}" for i in range(12)), (0.0, 0.0)),  # tabs, columns swapped
    ],
    ids=["spaces-no-header", "semicolons-named-columns", "tabs-swapped-columns"],
)
def test_csv_separators_and_named_columns(text: str, first_point: tuple[float, float]) -> None:
    parsed = data.parse_points_csv(text.encode())
    assert parsed.points.shape == (12, 2)
    centre = torch.tensor(parsed.centre)
    expected = (torch.tensor(first_point) - centre) * parsed.scale
    assert parsed.points[0].tolist() == pytest.approx(expected.tolist(), abs=1e-4)


BAD_CSVS = {
    "text": (b"hello world, this is\nnot a list of points at all\n" * 8, "is not a number"),
    "one column": (("x\n" + "\n".join(str(i) for i in range(20))).encode(), "one column"),
    "one column, no header": ("\n".join(str(i) for i in range(20)).encode(), "one column"),
    "NaN": (("x,y\n" + _rows(20) + "\n3,nan\n").encode(), "NaN"),
    "empty cell": (("x,y\n" + _rows(20) + "\n3,\n").encode(), "missing"),
    "infinite": (("x,y\n" + _rows(20) + "\n3,inf\n").encode(), "not a finite"),
    "10^7 rows": (b"x,y\n" + b"1,2\n" * 10**7, "at most 50,000 rows"),
    "60,000 short rows": (b"1,2\n" * 60_000, "at most 50,000"),
    "binary": (bytes(range(256)) * 10, "not a text file"),
    "latin-1": (("x,y\n" + _rows(20) + "\ncaf\xe9,1\n").encode("latin-1"), "not UTF-8"),
    "empty": (b"", "empty"),
    "too few": (b"x,y\n1,2\n3,4\n", "at least 10"),
    "all equal": (b"1,1\n" * 20, "all points are the same"),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_bad_csv_content_gets_a_clear_message(case: str) -> None:
    content, phrase = BAD_CSVS[case]
    with pytest.raises(ValueError, match=phrase):
        data.parse_points_csv(content)


def test_knn_entropy_matches_a_gaussians_exact_entropy() -> None:
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.5, 2.0], dtype=torch.float64)
    points = torch.randn(4000, 2, generator=generator, dtype=torch.float64) * scales
    exact = math.log(2 * math.pi * math.e) + float(scales.log().sum())
    assert data.knn_entropy(points) == pytest.approx(exact, abs=0.05)


def test_gaussian_fit_nll_is_the_average_nll_of_the_maximum_likelihood_gaussian() -> None:
    points = data.toy_points("Two moons", 3000, 0.1, seed=0).double()
    mean = points.mean(0)
    covariance = (points - mean).T @ (points - mean) / len(points)
    fitted = torch.distributions.MultivariateNormal(mean, covariance)
    assert data.gaussian_fit_nll(points) == pytest.approx(float(-fitted.log_prob(points).mean()), abs=1e-9)


def test_drawn_points_follow_the_mixture_whose_entropy_is_reported() -> None:
    spots = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=torch.float64)
    points = data.drawn_points(spots, 3000, 0.3, seed=0)
    assert points.shape == (3000, 2)
    nearest = torch.cdist(points.double(), spots).argmin(1)
    assert torch.bincount(nearest, minlength=3).min() > 800  # every spot gets about a third
    exact_like = data.drawn_entropy(spots, 0.3)
    # Well-separated equal components: entropy = log 3 + entropy of one N(0, 0.3^2 I).
    assert exact_like == pytest.approx(math.log(3) + math.log(2 * math.pi * math.e * 0.09), abs=0.03)
    assert data.knn_entropy(points) == pytest.approx(exact_like, abs=0.08)
    with pytest.raises(ValueError, match="no points drawn"):
        data.drawn_points(spots[:0], 10, 0.3, seed=0)


@pytest.mark.parametrize("magnitude", [1e300, 1.7e308, 1e-300, 1e-310])
def test_extreme_but_finite_values_are_rescaled_safely_keeping_the_shape(magnitude: float) -> None:
    """1e300 used to overflow the variance (every point scaled by 0 onto the origin); 1e308 gave nan."""
    rows = [(math.cos(i), math.sin(2 * i)) for i in range(40)]
    text = "x,y\n" + "\n".join(f"{x * magnitude!r},{y * magnitude!r}" for x, y in rows)
    parsed = data.parse_points_csv(text.encode())
    assert torch.isfinite(parsed.points).all()
    spread = float(parsed.points.double().var(0, unbiased=False).mean().sqrt())
    assert math.isclose(spread, data.UPLOAD_STD, rel_tol=1e-3)  # not collapsed to one point
    reference = data.parse_points_csv(("x,y\n" + "\n".join(f"{x!r},{y!r}" for x, y in rows)).encode())
    assert torch.allclose(parsed.points, reference.points, atol=1e-3)
    assert "nan" not in parsed.describe() and "by 0 " not in parsed.describe()


def test_points_that_differ_only_in_their_last_digits_are_refused_with_the_cause() -> None:
    text = "x,y\n" + "\n".join(f"{1e300 * (1 + i * 1e-15)!r},{1e300!r}" for i in range(20))
    with pytest.raises(ValueError, match="subtract a common offset"):
        data.parse_points_csv(text.encode())
