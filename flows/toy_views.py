"""What the playground's panels show, computed from a 2D flow as plain arrays (no plotting here).

- :func:`density_grid`: log p(x) on a regular grid of the canvas.
- :func:`warped_grid`: a regular grid of the prior's space pushed through F (latent -> data).
- :func:`layer_trace`: points, grid and cell areas after each layer, and one chosen point's log|det|
  per layer, for the layer-by-layer view.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flows import Flow, Gaussian, Logistic, Scaling

#: A prior's grid spans its central 99% per coordinate.
PRIOR_QUANTILE = 0.995


def grid_axis(extent: float, resolution: int) -> Tensor:
    """``resolution`` evenly spaced values in [-extent, extent], float32."""
    return torch.linspace(-extent, extent, resolution)


@torch.no_grad()
def density_grid(model: Flow, extent: float, resolution: int = 100) -> np.ndarray:
    """log p(x) of the model at each point of a ``resolution x resolution`` grid over [-extent, extent]^2.

    Returns ``[resolution, resolution]`` float64, row i holding y = axis[i] (plotly's heatmap order).
    Non-finite values (a diverged model) become -inf.
    """
    axis = grid_axis(extent, resolution)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([xs.flatten(), ys.flatten()], 1)  # [r*r, 2], x varies fastest
    log_density = model.logProbability(points).double()
    log_density = torch.where(torch.isfinite(log_density), log_density, -math.inf)
    return log_density.reshape(resolution, resolution).numpy()


def prior_extent(model: Flow) -> float:
    """Half-width of the square holding the central 99% of the prior's mass per coordinate."""
    prior = model.prior
    scale = float(torch.exp(prior.log_scale).max())
    centre = float(prior.loc.abs().max())
    if isinstance(prior, Logistic):
        standard = math.log(PRIOR_QUANTILE / (1 - PRIOR_QUANTILE))
    elif isinstance(prior, Gaussian):
        standard = math.sqrt(2) * float(torch.special.erfinv(torch.tensor(2 * PRIOR_QUANTILE - 1)))
    else:
        standard = 3.0
    return centre + scale * standard


def lattice(extent: float, cells: int, subdivisions: int) -> Tensor:
    """A ``[m, m, 2]`` lattice over [-extent, extent]^2, m = cells * subdivisions + 1; [i, j] = (x_j, y_i)."""
    axis = grid_axis(extent, cells * subdivisions + 1)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs, ys], -1)


@torch.no_grad()
def push_forward(model: Flow, points: Tensor, upto: int | None = None) -> tuple[Tensor, Tensor]:
    """Points ``[..., 2]`` of the prior's space after the first ``upto`` layers (all by default).

    Returns ``(moved [..., 2], log|det| of the map so far [...])``.
    """
    h = points.reshape(-1, 2)
    total = h.new_zeros(len(h))
    for layer in list(model.layers)[:upto]:
        h, log_abs_det = layer(h)
        total = total + log_abs_det
    return h.reshape(points.shape), total.reshape(points.shape[:-1])


def warped_grid(model: Flow, lines: int = 15, points_per_line: int = 90) -> Tensor:
    """A regular grid of the prior's space pushed through F: ``[2, lines, points_per_line, 2]``.

    ``[0, i]`` is the i-th line of constant z_2 (a "horizontal" line before warping), ``[1, i]`` the
    i-th line of constant z_1.
    """
    extent = prior_extent(model)
    across = grid_axis(extent, points_per_line)
    levels = grid_axis(extent, lines)
    horizontal = torch.stack([across.expand(lines, -1), levels[:, None].expand(-1, points_per_line)], -1)
    vertical = horizontal.flip(-1)
    return push_forward(model, torch.stack([horizontal, vertical]))[0]


def start_colours(z: Tensor) -> list[str]:
    """A colour per point from where it starts in the prior's space: hue = angle, saturation = radius."""
    angle = (torch.atan2(z[:, 1], z[:, 0]) / (2 * math.pi)) % 1.0
    radius = (z.norm(dim=1) / 2.2).clamp(0.15, 1.0)
    colours = []
    for hue, saturation in zip(angle.tolist(), radius.tolist(), strict=True):
        red, green, blue = colorsys.hsv_to_rgb(hue, saturation, 0.88)
        colours.append(f"rgb({red * 255:.0f},{green * 255:.0f},{blue * 255:.0f})")
    return colours


def layer_labels(model: Flow) -> list[str]:
    """A name for each position of the layer slider: 0 is the prior, i is "after layer i"."""
    labels = ["z: the prior"]
    blocks_seen = 0
    for index, layer in enumerate(model.layers, start=1):
        if isinstance(layer, Scaling):
            labels.append(f"{index}: final scaling, x = exp(s)·z")
            continue
        label = getattr(layer, "label", "") or type(layer).__name__
        if label.startswith("f1"):
            blocks_seen += 1
        label = label.replace("<-", "←").replace("*", "·")
        labels.append(f"{index}: block {max(blocks_seen, 1)}, {label}")
    return labels


@dataclass
class LayerFrame:
    """Everything the layer view draws after the first ``index`` layers."""

    index: int
    label: str
    points: np.ndarray  # [n, 2] the latent sample moved so far
    lattice: np.ndarray  # [m, m, 2] the prior-space lattice moved so far
    cell_log_area: np.ndarray  # [cells, cells] log(area now / area in the prior's space) at cell centres
    chosen: np.ndarray  # [2] the chosen point moved so far
    chosen_log_det: float  # log|det| of this layer alone at the chosen point (0 for index 0)


@torch.no_grad()
def layer_trace(
    model: Flow, latent: Tensor, chosen: Tensor, cells: int = 12, subdivisions: int = 4
) -> list[LayerFrame]:
    """Pushes ``latent [n, 2]``, a lattice and ``chosen [2]`` through the layers one at a time.

    Returns one frame per slider position (0 = the prior, len(layers) = the data space). The cell
    areas come from the exact log|det| at each cell's centre, so NICE's couplings show exactly 0.
    """
    extent = prior_extent(model)
    mesh = lattice(extent, cells, subdivisions)
    centres = lattice(extent, cells, 1)
    centres = (centres[:-1, :-1] + centres[1:, 1:]) / 2  # [cells, cells, 2]
    labels = layer_labels(model)
    size = len(latent)
    batch = torch.cat([latent, mesh.reshape(-1, 2), centres.reshape(-1, 2), chosen.reshape(1, 2)])
    total = batch.new_zeros(len(batch))
    frames = []
    h = batch
    for index in range(len(model.layers) + 1):
        layer_log_det = 0.0
        if index:
            h, log_abs_det = model.layers[index - 1](h)
            total = total + log_abs_det
            layer_log_det = float(log_abs_det[-1])
        offset = size + mesh.shape[0] * mesh.shape[1]
        frames.append(
            LayerFrame(
                index=index,
                label=labels[index],
                points=h[:size].numpy().astype(np.float64),
                lattice=h[size:offset].reshape(mesh.shape).numpy().astype(np.float64),
                cell_log_area=total[offset:-1].reshape(cells, cells).numpy().astype(np.float64),
                chosen=h[-1].numpy().astype(np.float64),
                chosen_log_det=layer_log_det,
            )
        )
    return frames
