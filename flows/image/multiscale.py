"""The multi-scale architecture: levels that squeeze, transform and factor out half the channels.

A level with data-side shape ``[C, H, W]`` works, from data to latent, as in Dinh et al. 2016
(https://arxiv.org/abs/1605.08803, section 3.6) and Glow: optional steps at full resolution, a squeeze
to ``[4C, H/2, W/2]``, steps, then the channels split into a kept half that the next level transforms
further and a factored-out half whose density is a Gaussian conditioned on the kept half
(:class:`FactorOut`). The factored parts are not set aside: each level puts them back where they came
from and unsqueezes, so the latent z has the data's shape and the prior stays one standard Gaussian of
the full shape. A level whose H or W is odd does not squeeze (28 -> 14 -> 7, then 7 x 7 levels keep
their size).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import ImageBijection, Squeeze, Unsqueeze
from .couplings import ChannelCoupling


class FactorOut(ChannelCoupling):
    """The learned prior of a factored-out half: out = mu(kept) + exp(log_sigma(kept)) * z_out.

    A Gaussian N(mu(kept), sigma(kept)^2) on the factored half, written as a bijection from a standard
    Gaussian z_out: the affine channel coupling in which the kept channels (the first C/2) condition the
    others; log|det dx/dz| = sum log_sigma. Starts as the standard Gaussian (mu = 0, sigma = 1).
    Kingma and Dhariwal 2018, https://arxiv.org/abs/1807.03039, "learned prior" of the split.
    """

    def __init__(self, channels: int, hidden: int, context: int = 0) -> None:
        super().__init__(channels, hidden, flip=False, residual_blocks=0, context=context)
        self.label = (
            f"factor out: last {channels - self.conditioning} of {channels} channels ~ N(mu, sigma^2)"
        )


class OnChannels(ImageBijection):
    """Applies ``inner`` to the first ``channels`` channels and leaves the others as they are."""

    def __init__(self, inner: ImageBijection, channels: int) -> None:
        super().__init__()
        self.inner, self.channels = inner, channels
        self.label = f"next level on the first {channels} channels"

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        head, log_abs_det = self.inner(z[:, : self.channels], context)
        return torch.cat([head, z[:, self.channels :]], 1), log_abs_det

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        head, log_abs_det = self.inner.inverse(x[:, : self.channels], context)
        return torch.cat([head, x[:, self.channels :]], 1), log_abs_det


class Sequential(ImageBijection):
    """Image layers applied in order by ``forward`` (latent -> data) and in reverse by ``inverse``."""

    def __init__(self, layers: Sequence[ImageBijection], label: str = "") -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.label = label

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = z.new_zeros(len(z))
        for layer in self.layers:
            z, log_abs_det = layer(z, context)
            total = total + log_abs_det
        return z, total

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(len(x))
        for layer in reversed(self.layers):
            x, log_abs_det = layer.inverse(x, context)
            total = total + log_abs_det
        return x, total


def image_shape_problem(shape: Sequence[int], levels: int) -> str | None:
    """Why ``levels`` scales cannot be built on data of ``shape [C, H, W]`` (None when they can)."""
    channels, height, width = shape
    for depth in range(1, levels + 1):
        if height % 2 == 0 and width % 2 == 0:
            channels, height, width = 4 * channels, height // 2, width // 2
        if channels < 2:
            return (
                f"levels {levels} is too many for {'x'.join(map(str, shape))} images: level {depth} cannot "
                "squeeze (odd height or width) and has fewer than 2 channels to split; use fewer levels"
            )
        channels = channels // 2 if depth < levels else channels
    return None


def level(
    shape: Sequence[int],
    levels: int,
    make_full_resolution_steps,
    make_steps,
    hidden: int,
    context: int = 0,
    depth: int = 1,
) -> Sequential:
    """Builds level ``depth`` of ``levels`` for data-side ``shape [C, H, W]`` (recursing into the next).

    ``make_full_resolution_steps(shape)`` and ``make_steps(shape)`` return the coupling steps (in
    data -> latent order) before and after the squeeze; their output is listed in latent -> data order
    here. Raises ValueError when a level can neither squeeze nor split its channels.
    """
    channels, height, width = shape
    squeezes = height % 2 == 0 and width % 2 == 0
    inner = [4 * channels, height // 2, width // 2] if squeezes else [channels, height, width]
    if inner[0] < 2:
        raise ValueError(
            f"level {depth} gets a {channels}x{height}x{width} input: it cannot squeeze (odd height or "
            "width) and has fewer than 2 channels to split; use an image with even height and width, "
            "or fewer levels"
        )
    # Built in data -> latent order, reversed at the end into forward (latent -> data) order.
    data_to_latent: list[ImageBijection] = list(make_full_resolution_steps(list(shape)))
    if squeezes:
        data_to_latent.append(Unsqueeze())  # inverse(x) of Unsqueeze squeezes the data
    data_to_latent += list(make_steps(inner))
    if depth < levels:
        kept = inner[0] // 2
        data_to_latent.append(FactorOut(inner[0], hidden, context))
        child = level(
            [kept, inner[1], inner[2]],
            levels,
            make_full_resolution_steps,
            make_steps,
            hidden,
            context,
            depth + 1,
        )
        data_to_latent.append(OnChannels(child, kept))
    if squeezes:
        data_to_latent.append(Squeeze())  # inverse(z) unsqueezes: the latent keeps the data's layout
    size = "x".join(map(str, shape))
    body = Sequential(data_to_latent[::-1], label=f"level {depth}: {size}")
    body.scale = Scale(
        depth, list(shape), inner, [inner[0] - inner[0] // 2, *inner[1:]] if depth < levels else None
    )
    return body


@dataclass
class Scale:
    """One level of a multi-scale flow, data side: its input, its squeezed shape, what it factors out."""

    depth: int
    input_shape: list[int]
    squeezed_shape: list[int]  # equal to input_shape when the level does not squeeze
    factored_shape: list[int] | None  # the channels modelled here by FactorOut (None for the last level)
    parameters: int = 0  # trainable scalars of this level, not counting deeper levels


def scales(module: nn.Module) -> list[Scale]:
    """The levels of a multi-scale flow (or of one level), outermost first, with their parameter counts."""
    found: list[Scale] = []
    for sub in module.modules():
        scale = getattr(sub, "scale", None)
        if isinstance(sub, Sequential) and isinstance(scale, Scale):
            inner = sum(
                p.numel() for layer in sub.layers if isinstance(layer, OnChannels) for p in layer.parameters()
            )
            scale.parameters = sum(p.numel() for p in sub.parameters()) - inner
            found.append(scale)
    return sorted(found, key=lambda s: s.depth)


def leaves(
    layer: ImageBijection, z: Tensor, context: Tensor | None, path: str = ""
) -> Iterator[tuple[str, ImageBijection, Tensor]]:
    """Walks the forward pass from ``z``, yielding ``(name, leaf layer, its input)`` for every leaf."""
    if isinstance(layer, Sequential):
        for index, child in enumerate(layer.layers):
            yield from leaves(child, z, context, f"{path}{index}.")
            z = child(z, context)[0]
        return
    if isinstance(layer, OnChannels):
        yield from leaves(layer.inner, z[:, : layer.channels], context, path)
        return
    size = "x".join(map(str, z.shape[1:]))
    yield f"{path.rstrip('.')}: {layer.label or type(layer).__name__} on {size}", layer, z
