"""What the Samples page computes from a trained flow: samples at a temperature, latent interpolation,
the x -> z -> x round trip and per-image bits/dim. Plain torch, no Streamlit.

Inputs may be flat (``[N, 784]``) or in the flow's sample shape (``[N, 1, 28, 28]`` for the image flows);
each function reshapes to the flow's shape. ``labels`` (an int or ``[N]`` class indices) are for the
class-conditional flows, which need them; leave them out (None) for the others.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from flows.data import bits_per_dim, dequantize
from flows.models import Flow
from flows.training.held_out import EVAL_NOISE_SEED  # per-image bits/dim use the evaluation's noise
from flows.training.images import RNG_LOCK


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


def is_conditional(flow: Flow) -> bool:
    """True for a class-conditional flow (its densities and samples need labels)."""
    return getattr(flow, "num_classes", 0) > 0


def _labelled(method, x: Tensor, labels: int | Tensor | None):
    """``method(x)``, or ``method(x, labels)`` when labels are given."""
    return method(x) if labels is None else method(x, labels)


def _shaped(flow: Flow, x: Tensor) -> Tensor:
    return x.reshape(len(x), *flow.shape)


@torch.no_grad()
def sample(
    flow: Flow, count: int, temperature: float = 1.0, seed: int = 0, labels: int | Tensor | None = None
) -> Tensor:
    """``count`` samples x = F(z) at ``temperature``, ``[count, *shape]`` (of class ``labels``)."""
    return _labelled(flow.forward, latents_at_temperature(flow, count, temperature, seed), labels)[0]


@torch.no_grad()
def interpolate(
    flow: Flow, x_start: Tensor, x_end: Tensor, points: int, labels: tuple[int, int] | None = None
) -> Tensor:
    """Decodes ``points`` latents evenly spaced on the line from F^-1(x_start) to F^-1(x_end).

    ``x_start``, ``x_end``: one sample each, ``[*shape]`` (or flat). Returns ``[points, *shape]``; the first
    and last rows reproduce the two inputs (up to rounding). A conditional flow encodes each end with its
    own class (``labels`` = (class of start, class of end)) and decodes the first half of the path with the
    first class, the second half with the second.
    """
    if points < 2:
        raise ValueError(f"points must be at least 2 (both ends), got {points}")
    ends = _shaped(flow, torch.stack([x_start.reshape(-1), x_end.reshape(-1)]))
    end_labels = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    z, _ = _labelled(flow.inverse, ends, end_labels)
    weights = torch.linspace(0, 1, points, dtype=z.dtype).reshape(points, *([1] * (z.dim() - 1)))
    path = (1 - weights) * z[0] + weights * z[1]
    path_labels = None
    if labels is not None:
        path_labels = torch.where(weights.flatten() < 0.5, labels[0], labels[1]).to(torch.int64)
    return _labelled(flow.forward, path, path_labels)[0]


@dataclass(frozen=True)
class RoundTrip:
    """x -> z = F^-1(x) -> F(z): the rebuilt samples and the largest and mean absolute errors."""

    rebuilt: Tensor
    max_error: float
    mean_error: float
    dtype: torch.dtype


@torch.no_grad()
def round_trip(
    flow: Flow, x: Tensor, dtype: torch.dtype = torch.float32, labels: Tensor | None = None
) -> RoundTrip:
    """Encodes and decodes ``x`` in ``dtype`` (float64 uses a float64 copy of the flow); ``rebuilt``
    has the shape of ``x``."""
    model = flow if dtype == torch.float32 else copy.deepcopy(flow).to(dtype)
    shaped = _shaped(model, x.to(dtype))
    z, _ = _labelled(model.inverse, shaped, labels)
    rebuilt, _ = _labelled(model.forward, z, labels)
    error = (rebuilt - shaped).abs()
    return RoundTrip(rebuilt.float().reshape(x.shape), float(error.max()), float(error.mean()), dtype)


@torch.no_grad()
def image_bits_per_dim(
    flow: Flow, images_uint8: Tensor, batch_size: int = 500, labels: Tensor | None = None
) -> Tensor:
    """Bits/dim of each image (dequantized with fixed noise, as the trainer evaluates), float64 ``[N]``;
    for a conditional flow, of each image given its class ``labels``."""
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    flat = images_uint8.reshape(len(images_uint8), -1)
    values = []
    for start in range(0, len(flat), batch_size):
        x = _shaped(flow, dequantize(flat[start : start + batch_size], generator))
        rows = None if labels is None else labels[start : start + batch_size]
        values.append(bits_per_dim(_labelled(flow.logProbability, x, rows).double(), flat.shape[1]))
    return torch.cat(values)


@torch.no_grad()
def point_nll(flow: Flow, points: Tensor) -> Tensor:
    """Negative log density (nats) of each 2D point, float64 ``[N]``."""
    return -flow.logProbability(points.float()).double()


#: A pixel darker than this counts as background, one between GREY_PIXELS as grey (pixels in [0, 1]).
DARK_PIXEL = 0.1
GREY_PIXELS = (0.25, 0.75)


@dataclass(frozen=True)
class TemperatureEffect:
    """What a temperature does to an image flow's samples, measured on ``count`` of them."""

    temperature: float
    bits_per_dim: float  # median bits/dim the flow gives its own samples: lower = more likely to it
    dark_share: float  # share of pixels < DARK_PIXEL (a clean digit is mostly dark background)
    grey_share: float  # share of pixels in GREY_PIXELS (neither background nor stroke)
    count: int


@torch.no_grad()
def temperature_effect(
    flow: Flow, temperature: float, count: int = 100, seed: int = 0, labels: int | Tensor | None = None
) -> TemperatureEffect:
    """Draws ``count`` samples x = F(z) at ``temperature`` and measures them (image flows; x in [0, 1]).

    bits/dim is 8 - log p(x) / (784 ln 2) of each sample x as drawn (continuous, not dequantized), the
    median over the samples (a sample rounded onto the pixel range's edge has log p = -inf, which would
    swamp a mean); the pixel shares count the samples clamped to [0, 1].
    """
    z = latents_at_temperature(flow, count, temperature, seed)
    if isinstance(labels, int):
        labels = torch.full((count,), labels, dtype=torch.int64)
    x = _labelled(flow.forward, z, labels)[0]
    log_p = _labelled(flow.logProbability, x, labels).double()
    flat = x.reshape(count, -1).clamp(0, 1)
    low, high = GREY_PIXELS
    return TemperatureEffect(
        temperature=float(temperature),
        bits_per_dim=float(bits_per_dim(log_p, flat.shape[1]).median()),
        dark_share=float((flat < DARK_PIXEL).double().mean()),
        grey_share=float(((flat > low) & (flat < high)).double().mean()),
        count=count,
    )
