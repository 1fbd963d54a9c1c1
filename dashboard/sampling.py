"""What the Samples page computes from a trained flow: samples at a temperature, latent interpolation,
the x -> z -> x round trip and per-image bits/dim. Plain torch, no Streamlit."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from flows.data import bits_per_dim, dequantize
from flows.models import Flow
from flows.training.images import RNG_LOCK

#: Seed of the dequantization noise for per-image bits/dim (as the trainer's evaluation).
EVAL_NOISE_SEED = 1234


def pixels_to_unit(images_uint8: Tensor) -> Tensor:
    """uint8 pixels k -> the centre of their bin, (k + 0.5) / 256, as float32 ``[N, 784]``."""
    return (images_uint8.reshape(len(images_uint8), -1).float() + 0.5) / 256


@torch.no_grad()
def latents_at_temperature(flow: Flow, count: int, temperature: float, seed: int) -> Tensor:
    """``count`` prior draws with their spread scaled by ``temperature``: z = loc + T (z0 - loc).

    T = 1 samples the model; T < 1 trades variety for cleaner, more typical samples (Kingma & Dhariwal 2018).
    """
    if count < 1:
        raise ValueError(f"count must be a positive integer, got {count}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be a non-negative number, got {temperature}")
    with RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = flow.prior.sample(count)
    loc = flow.prior.loc
    return loc + temperature * (z - loc)


@torch.no_grad()
def sample(flow: Flow, count: int, temperature: float = 1.0, seed: int = 0) -> Tensor:
    """``count`` samples x = F(z) at ``temperature``, ``[count, *shape]``."""
    return flow.forward(latents_at_temperature(flow, count, temperature, seed))[0]


@torch.no_grad()
def interpolate(flow: Flow, x_start: Tensor, x_end: Tensor, points: int) -> Tensor:
    """Decodes ``points`` latents evenly spaced on the line from F^-1(x_start) to F^-1(x_end).

    ``x_start``, ``x_end``: one sample each, ``[*shape]``. Returns ``[points, *shape]``; the first and last
    rows reproduce the two inputs (up to rounding).
    """
    if points < 2:
        raise ValueError(f"points must be at least 2 (both ends), got {points}")
    z, _ = flow.inverse(torch.stack([x_start, x_end]))
    weights = torch.linspace(0, 1, points, dtype=z.dtype).reshape(points, *([1] * (z.dim() - 1)))
    path = (1 - weights) * z[0] + weights * z[1]
    return flow.forward(path)[0]


@dataclass(frozen=True)
class RoundTrip:
    """x -> z = F^-1(x) -> F(z): the rebuilt samples and the largest and mean absolute errors."""

    rebuilt: Tensor
    max_error: float
    mean_error: float
    dtype: torch.dtype


@torch.no_grad()
def round_trip(flow: Flow, x: Tensor, dtype: torch.dtype = torch.float32) -> RoundTrip:
    """Encodes and decodes ``x`` in ``dtype`` (float64 uses a float64 copy of the flow)."""
    model = flow if dtype == torch.float32 else copy.deepcopy(flow).to(dtype)
    x = x.to(dtype)
    z, _ = model.inverse(x)
    rebuilt, _ = model.forward(z)
    error = (rebuilt - x).abs()
    return RoundTrip(rebuilt.float(), float(error.max()), float(error.mean()), dtype)


@torch.no_grad()
def image_bits_per_dim(flow: Flow, images_uint8: Tensor, batch_size: int = 500) -> Tensor:
    """Bits/dim of each image (dequantized with fixed noise, as the trainer evaluates), float64 ``[N]``."""
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    flat = images_uint8.reshape(len(images_uint8), -1)
    values = []
    for start in range(0, len(flat), batch_size):
        x = dequantize(flat[start : start + batch_size], generator)
        values.append(bits_per_dim(flow.logProbability(x).double(), flat.shape[1]))
    return torch.cat(values)


@torch.no_grad()
def point_nll(flow: Flow, points: Tensor) -> Tensor:
    """Negative log density (nats) of each 2D point, float64 ``[N]``."""
    return -flow.logProbability(points.float()).double()
