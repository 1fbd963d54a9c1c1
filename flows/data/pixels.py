"""Model-ready pixels: uniform dequantization, bits per dimension, random batches, random shifts."""

from __future__ import annotations

import math

import torch
from torch import Tensor

PIXEL_LEVELS = 256


def dequantize(images_uint8: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantization: x = (k + u) / 256 with u ~ U[0, 1), float32 in [0, 1), same shape.

    Each pixel value k in {0, ..., 255} is spread over its own bin [k/256, (k+1)/256), so a density
    on [0, 1)^D gives a lower bound on the log-likelihood of the discrete data (Theis et al. 2016,
    https://arxiv.org/abs/1511.01844). The whole dataset stays uint8; call this per batch.
    """
    if not isinstance(images_uint8, Tensor) or images_uint8.dtype != torch.uint8:
        got = images_uint8.dtype if isinstance(images_uint8, Tensor) else type(images_uint8).__name__
        raise ValueError(f"expected a uint8 tensor of pixel values 0..255, got {got}; pass the raw images")
    levels = images_uint8.to(torch.float32)
    noise = torch.rand(images_uint8.shape, generator=generator, device=images_uint8.device)
    x = (levels + noise) / PIXEL_LEVELS
    # In float32, k + u rounds up to k + 1 when u is within 2^-17 of 1: keep x inside its bin.
    bin_top = torch.nextafter((levels + 1) / PIXEL_LEVELS, torch.zeros((), device=x.device))
    return torch.minimum(x, bin_top)


def bits_per_dim(log_prob: Tensor, dims: int) -> Tensor:
    """Bits per dimension in 8-bit pixel space: 8 - log p(x) / (dims ln 2).

    ``log_prob`` is the log density (nats) of x in [0, 1)^dims; scaling x by 256 to pixel space
    subtracts dims * ln 256 from it, hence the 8. Works element-wise on any shape.
    """
    if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
        raise ValueError(f"dims must be a positive integer (784 for MNIST), got {dims!r}")
    return math.log2(PIXEL_LEVELS) - log_prob / (dims * math.log(2))


def random_batch(images: Tensor, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
    """``batch_size`` rows of ``images`` drawn uniformly at random with replacement (the seed's batches)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if len(images) == 0:
        raise ValueError("cannot draw a batch from an empty dataset")
    generator_device = generator.device if generator is not None else torch.device("cpu")
    indices = torch.randint(len(images), (batch_size,), generator=generator, device=generator_device)
    return images[indices.to(images.device)]


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Each image moved by its own random whole-pixel offset (dy, dx), both uniform in
    [-max_shift, max_shift]; pixels moved in from outside are 0 (the background of the digits).

    ``images`` is ``[B, H, W]`` or square images as flat rows ``[B, H*W]``; shape and dtype are kept.
    A regulariser for small datasets (a digit moved by a pixel or two is still that digit); 0 returns
    ``images`` itself and draws nothing from ``generator``.
    """
    if not isinstance(max_shift, int) or isinstance(max_shift, bool) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative integer, got {max_shift!r}")
    if max_shift == 0:
        return images
    count = len(images)
    side = math.isqrt(images[0].numel()) if count else 0
    if images.dim() not in (2, 3) or side * side != images[0].numel():
        raise ValueError(f"expected square images [B, H, W] or flat rows [B, H*W], got {list(images.shape)}")
    grid = images.reshape(count, side, side)
    padded = torch.nn.functional.pad(grid, (max_shift,) * 4)
    generator_device = generator.device if generator is not None else torch.device("cpu")
    offsets = torch.randint(2 * max_shift + 1, (count, 2), generator=generator, device=generator_device)
    offsets = offsets.to(images.device)
    pixels = torch.arange(side, device=images.device)
    rows = (offsets[:, 0:1] + pixels)[:, :, None]  # [B, H, 1]
    columns = (offsets[:, 1:2] + pixels)[:, None, :]  # [B, 1, W]
    moved = padded[torch.arange(count, device=images.device)[:, None, None], rows, columns]
    return moved.reshape(images.shape)
