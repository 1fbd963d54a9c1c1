"""Model-ready pixels: dequantization, the logit layer, bits per dimension and random batches."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from flows import Flow, Logistic, Logit
from flows.data import bits_per_dim, dequantize, load_mnist, random_batch, random_shift
from flows.jacobian import autograd_log_abs_det


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> torch.Tensor:
    return load_mnist(mnist_dir, "test")[0]


def test_dequantized_digits_lie_in_their_own_bin_of_0_1(digits: torch.Tensor) -> None:
    x = dequantize(digits, torch.Generator().manual_seed(1))
    assert x.dtype == torch.float32 and x.shape == digits.shape
    assert float(x.min()) >= 0 and float(x.max()) < 1
    assert torch.equal(torch.floor(x * 256).to(torch.uint8), digits)  # (k + u) / 256 stays in bin k


def test_the_top_bin_never_rounds_up_to_1() -> None:
    """In float32, 255 + u rounds to 256 for u within 2^-17 of 1: ~60 of these 7.8 million draws would."""
    white = torch.full((10_000, 784), 255, dtype=torch.uint8)
    x = dequantize(white, torch.Generator().manual_seed(0))
    assert float(x.max()) < 1 and float(x.min()) >= 255 / 256


def test_the_noise_is_uniform_on_each_bin() -> None:
    n = 200_000
    pixels = torch.randint(256, (n,), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    u = dequantize(pixels, torch.Generator().manual_seed(3)).double() * 256 - pixels.double()
    # Mean 1/2 and variance 1/12 of U[0, 1), each within 5 standard errors.
    assert abs(float(u.mean()) - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(float(u.var()) - 1 / 12) < 5 * math.sqrt(1 / 180 / n)
    assert torch.histc(u, bins=4, min=0, max=1).min() > n / 4 * 0.98


def test_dequantize_is_reproducible_with_a_generator_and_checks_its_input(digits: torch.Tensor) -> None:
    batch = digits[:8]
    first = dequantize(batch, torch.Generator().manual_seed(5))
    assert torch.equal(first, dequantize(batch, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, dequantize(batch, torch.Generator().manual_seed(6)))
    with pytest.raises(ValueError, match="expected a uint8 tensor"):
        dequantize(batch.float() / 255)


def test_logit_layer_log_dets_agree_with_autograd_in_float64(digits: torch.Tensor) -> None:
    layer = Logit(alpha=0.05).double()
    # The layer is element-wise: 3 digits' middle rows (pixels 336..447, strokes and background) suffice.
    x = dequantize(digits[:3, 12:16], torch.Generator().manual_seed(0)).reshape(3, -1).double()
    z, inverse_log_det = layer.inverse(x)
    torch.testing.assert_close(inverse_log_det, autograd_log_abs_det(lambda v: layer.inverse(v)[0], x))
    x_again, forward_log_det = layer(z)
    torch.testing.assert_close(forward_log_det, autograd_log_abs_det(lambda v: layer(v)[0], z))
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(forward_log_det, -inverse_log_det)


def test_bits_per_dim_of_the_uniform_density_on_the_unit_cube_is_exactly_8() -> None:
    assert torch.equal(bits_per_dim(torch.zeros(5, dtype=torch.float64), 784), torch.full((5,), 8.0).double())
    assert torch.equal(bits_per_dim(torch.zeros(5), 784), torch.full((5,), 8.0))


def test_a_flow_that_is_uniform_on_pixel_space_scores_8_bits_per_dim(digits: torch.Tensor) -> None:
    """sigmoid of a standard logistic variable is U(0, 1), so this flow's density is 1 on (0, 1)^784."""
    flow = Flow(Logistic([784]), [Logit(alpha=0.0)]).double()
    x = dequantize(digits[:64], torch.Generator().manual_seed(0)).reshape(64, 784).double()
    bits = bits_per_dim(flow.logProbability(x), 784)
    torch.testing.assert_close(bits, torch.full_like(bits, 8.0), rtol=0, atol=1e-9)


def test_bits_per_dim_counts_pixel_probabilities() -> None:
    """Density 2 on [0, 1/2) per dimension puts mass 1/128 on each dark pixel value: 7 bits."""
    dims = 784
    log_prob = torch.full((3,), dims * math.log(2), dtype=torch.float64)
    torch.testing.assert_close(bits_per_dim(log_prob, dims), torch.full((3,), 7.0).double())
    with pytest.raises(ValueError, match="dims must be a positive integer"):
        bits_per_dim(log_prob, 0)


def test_random_batch_draws_rows_of_the_dataset_uniformly() -> None:
    data = torch.arange(50, dtype=torch.uint8).reshape(50, 1).expand(50, 3)  # row i holds i
    batch = random_batch(data, 20_000, torch.Generator().manual_seed(0))
    assert batch.shape == (20_000, 3) and batch.dtype == torch.uint8
    assert torch.equal(batch[:, 0:1].expand(-1, 3), batch)  # whole rows
    counts = torch.bincount(batch[:, 0].long(), minlength=50)
    assert int(counts.min()) > 300 and int(counts.max()) < 500  # 400 expected per row
    again = random_batch(data, 20_000, torch.Generator().manual_seed(0))
    assert torch.equal(batch, again)


def test_random_batch_of_real_digits_keeps_uint8_and_checks_its_input(digits: torch.Tensor) -> None:
    batch = random_batch(digits, 32)
    assert batch.shape == (32, 28, 28) and batch.dtype == torch.uint8
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        random_batch(digits, 0)
    with pytest.raises(ValueError, match="empty dataset"):
        random_batch(digits[:0], 4)


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` moved down by dy and right by dx pixel by pixel, zeros moved in (the reference)."""
    out = torch.zeros_like(image)
    rows, columns = image.shape
    for i in range(rows):
        for j in range(columns):
            if 0 <= i - dy < rows and 0 <= j - dx < columns:
                out[i, j] = image[i - dy, j - dx]
    return out


def test_random_shift_moves_each_digit_by_one_offset_and_draws_every_offset(digits: torch.Tensor) -> None:
    images = digits[:300]
    moved = random_shift(images.reshape(300, 784), 1, torch.Generator().manual_seed(3)).reshape(300, 28, 28)
    offsets = set()
    for image, result in zip(images, moved, strict=True):
        matches = [
            (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if torch.equal(_shifted(image, dy, dx), result)
        ]
        assert matches, "a shifted digit is not its digit moved by one offset of at most 1 pixel"
        offsets.update(matches)
    assert len(offsets) == 9  # all nine offsets in [-1, 1]^2 drawn in 300 images
    assert moved.dtype == torch.uint8


def test_random_shift_of_zero_is_the_images_themselves_and_draws_nothing(digits: torch.Tensor) -> None:
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert random_shift(digits, 0, generator) is digits
    assert torch.equal(generator.get_state(), state)
    with pytest.raises(ValueError, match="max_shift must be a non-negative integer"):
        random_shift(digits, -1)
    with pytest.raises(ValueError, match="square images"):
        random_shift(torch.zeros(4, 10, dtype=torch.uint8), 1)
