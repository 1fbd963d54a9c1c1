"""Plotly figures of the Flow Playground, styled to read well on a projector.

Each function takes plain arrays (from :mod:`flows.toy_views` and the run's history) and
returns a ``plotly.graph_objects.Figure``; nothing here trains or touches streamlit. Figures are built
from one dict each (trace-by-trace updates and ``add_hline`` cost tens of milliseconds). The four live
panels, rebuilt twice a second, skip plotly's property validation (:func:`_live_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.playground.style import (
    AREA_COLOURS,
    DATA_COLOUR,
    DENSITY_SCALE,
    ENTROPY_COLOUR,
    GAUSSIAN_COLOUR,
    GRID_COLOURS,
    KEPT_AREA_BIN,
    MODEL_COLOUR,
    PANEL_HEIGHT,
    Spec,
    area_bin,
    canvas,
    chart_layout,
    points,
    reference_lines,
    with_breaks,
)
from flows.toy_views import LayerFrame


def _live_figure(spec: Spec) -> go.Figure:
    """A figure of a live panel from a spec built here, not validated property by property.

    Validating the three canvas panels' 800-point specs took 287 ms per refresh against 21 ms unvalidated
    (one process on this 2-core machine, same specs, same JSON out): time the page thread otherwise
    takes from training. The specs are fixed code, checked by the tests with validation on.
    """
    return go.Figure(spec, _validate=False)


def samples_figure(data: np.ndarray, samples: np.ndarray | None, extent: float) -> go.Figure:
    """The target's points (orange) and the flow's samples x = F(z) (blue)."""
    traces = [points(data, "data", DATA_COLOUR, opacity=0.55)]
    if samples is not None:
        traces.append(points(samples, "model samples  x = F(z)", MODEL_COLOUR, opacity=0.6))
    return _live_figure({"data": traces, "layout": canvas("Data vs model samples", extent)})


def density_limits(log_density: np.ndarray) -> tuple[np.ndarray, float]:
    """p(x) from log p(x), and the colour scale's top: the 99.5% quantile, so one spike cannot wash it out."""
    density = np.exp(np.clip(np.nan_to_num(log_density, nan=-50.0), -50, 50))
    return density, max(float(np.quantile(density, 0.995)), 1e-6)


def density_figure(
    log_density: np.ndarray, data: np.ndarray, extent: float, title: str | None = None
) -> go.Figure:
    """The learned density p(x) as a heatmap, the data dotted on top."""
    axis = np.round(np.linspace(-extent, extent, log_density.shape[0]), 4)
    density, top = density_limits(log_density)
    heatmap = {
        "type": "heatmap",
        "x": axis,
        "y": axis,
        "z": np.round(density, 5),
        "zmin": 0,
        "zmax": top,
        "colorscale": DENSITY_SCALE,
        "zsmooth": "fast",  # "best" interpolates in JavaScript: too slow at two refreshes a second
        "showscale": False,
        "name": "p(x)",
        "hovertemplate": "x=%{x:.2f}, y=%{y:.2f}<br>p(x)=%{z:.4f}<extra></extra>",
    }
    traces = [heatmap, points(data, "data", DATA_COLOUR, size=3, opacity=0.5)]
    traces.append(
        {
            "type": "scatter",
            "x": [None],
            "y": [None],
            "mode": "markers",
            "name": "darker = more probable",
            "marker": {"size": 12, "symbol": "square", "color": DENSITY_SCALE[-2][1]},
            "hoverinfo": "skip",
        }
    )
    layout = canvas(title or "Learned density p(x), data on top", extent)
    return _live_figure({"data": traces, "layout": layout})


def warped_grid_figure(grid: np.ndarray, data: np.ndarray, extent: float) -> go.Figure:
    """The prior's regular grid after F: ``grid [2, lines, points, 2]`` drawn over faint data."""
    traces = [points(data, "data", "#B8BDC6", size=3.5, opacity=0.5)]
    for family, colour, name in zip(grid, GRID_COLOURS, ("z₂ = const", "z₁ = const"), strict=True):
        xs, ys = with_breaks(family)
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "mode": "lines",
                "name": name,
                "line": {"color": colour, "width": 1.6},
                "hoverinfo": "skip",
            }
        )
    return _live_figure({"data": traces, "layout": canvas("Warped grid: z-grid pushed through F", extent)})


def block_means(values: Sequence[float], most: int) -> np.ndarray:
    """At most ``most`` points: the means of equal consecutive blocks (the values themselves when short)."""
    array = np.asarray(values, dtype=np.float64)
    size = -(-len(array) // most)  # ceil
    if size <= 1:
        return array
    whole = len(array) // size * size
    means = array[:whole].reshape(-1, size).mean(1)
    return np.append(means, array[whole:].mean()) if whole < len(array) else means


def smooth(values: Sequence[float], weight: float | None = None) -> np.ndarray:
    """Bias-corrected exponential moving average (TensorBoard's smoothing).

    ``weight=None`` averages over about a thirtieth of the curve (weight 1 - 30/n, within [0.5, 0.99]),
    so a short run is not drowned by its first steps and a long one is not noisy.
    """
    if weight is None:
        weight = min(max(1 - 30 / max(len(values), 1), 0.5), 0.99)
    result = np.empty(len(values))
    average = 0.0
    for index, value in enumerate(values):
        average = weight * average + (1 - weight) * value
        result[index] = average / (1 - weight ** (index + 1))
    return result


def loss_figure(
    steps: Sequence[int],
    losses: Sequence[float],
    eval_steps: Sequence[int],
    eval_nll: Sequence[float],
    gaussian_nll: float | None,
    entropy: float | None,
    entropy_note: str = "estimated",
    height: int = PANEL_HEIGHT,
) -> go.Figure:
    """Training loss per step (raw and smoothed), held-out NLL, and the two reference levels."""
    traces: list[Spec] = []
    if len(steps):
        xs, raw = block_means(steps, 1500), block_means(losses, 1500)
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": raw,
                "mode": "lines",
                "name": "batch loss",
                "line": {"color": "#C5CAD3", "width": 1},
                "hoverinfo": "skip",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": smooth(raw),
                "mode": "lines",
                "name": "smoothed",
                "line": {"color": MODEL_COLOUR, "width": 3},
                "hovertemplate": "step %{x:.0f}: %{y:.3f} nats<extra></extra>",
            }
        )
    if len(eval_steps):
        stride = max(1, len(eval_steps) // 300)
        traces.append(
            {
                "type": "scatter",
                "x": list(eval_steps)[::stride],
                "y": list(eval_nll)[::stride],
                "mode": "lines+markers",
                "name": "held-out NLL",
                "line": {"color": DATA_COLOUR, "width": 2},
                "marker": {"size": 5},
            }
        )
    references = []
    if gaussian_nll is not None:
        references.append((gaussian_nll, GAUSSIAN_COLOUR, f"Gaussian fit {gaussian_nll:.2f}"))
    if entropy is not None and math.isfinite(entropy):
        references.append((entropy, ENTROPY_COLOUR, f"target entropy ≈ {entropy:.2f} ({entropy_note})"))
    shapes, annotations = reference_lines(references)
    levels = [level for level, _, _ in references]
    yaxis: Spec = {
        "gridcolor": "#ECEEF2",
        "showline": True,
        "linecolor": "#C9CED6",
        "title": {"text": "nats"},
    }
    values = [*losses[len(losses) // 10 :], *eval_nll[len(eval_nll) // 10 :]]
    if values:
        low = min([float(np.min(values)), *levels]) - 0.25
        high = max([float(np.quantile(values, 0.99)), *levels]) + 0.25
        yaxis["range"] = [low, high]
    layout = chart_layout(
        "Loss: negative log-likelihood",
        height,
        {"l": 56, "r": 16, "t": 46, "b": 44},
        xaxis={
            "title": {"text": "step", "standoff": 2},
            "gridcolor": "#ECEEF2",
            "showline": True,
            "linecolor": "#C9CED6",
            "rangemode": "tozero",
        },
        yaxis=yaxis,
        shapes=shapes,
        annotations=annotations,
        legend={
            "orientation": "h",
            "x": 0.5,
            "xanchor": "center",
            "y": -0.13,
            "yanchor": "top",
            "font": {"size": 14},
        },
    )
    return _live_figure({"data": traces, "layout": layout})


def _cell_polygons(lattice: np.ndarray, cells: int) -> list[np.ndarray]:
    """The closed boundary of each cell of a warped lattice ``[m, m, 2]``: ``cells^2`` polygons, by rows."""
    step = (lattice.shape[0] - 1) // cells
    polygons = []
    for row in range(cells):
        for column in range(cells):
            top, left = row * step, column * step
            block = lattice[top : top + step + 1, left : left + step + 1]
            boundary = np.concatenate([block[0, :], block[1:, -1], block[-1, -2::-1], block[-2::-1, 0]])
            polygons.append(boundary)
    return polygons


def layer_figure(frame: LayerFrame, colours: list[str], extent: float, show_cells: bool = True) -> go.Figure:
    """Points, lattice and cell areas after ``frame.index`` layers, the chosen point as a star."""
    traces: list[Spec] = []
    cells = frame.cell_log_area.shape[0]
    if show_cells:
        by_bin: dict[int, list[np.ndarray]] = {}
        for polygon, value in zip(
            _cell_polygons(frame.lattice, cells), frame.cell_log_area.flatten(), strict=True
        ):
            by_bin.setdefault(area_bin(float(value)), []).append(polygon)
        for index, members in sorted(by_bin.items()):
            if index == KEPT_AREA_BIN:
                continue  # area kept: leave the cell white
            xs, ys = with_breaks(np.stack(members))
            traces.append(
                {
                    "type": "scatter",
                    "x": xs,
                    "y": ys,
                    "mode": "lines",
                    "fill": "toself",
                    "fillcolor": AREA_COLOURS[index],
                    "line": {"width": 0},
                    "opacity": 0.6,
                    "hoverinfo": "skip",
                    "showlegend": False,
                }
            )
    step = (frame.lattice.shape[0] - 1) // cells
    rows = frame.lattice[::step]  # lines of constant z2
    columns = frame.lattice[:, ::step].transpose(1, 0, 2)  # lines of constant z1
    xs, ys = with_breaks(np.concatenate([rows, columns]))
    traces.append(
        {
            "type": "scatter",
            "x": xs,
            "y": ys,
            "mode": "lines",
            "line": {"color": "#8F96A1", "width": 0.9},
            "hoverinfo": "skip",
            "showlegend": False,
        }
    )
    traces.append({**points(frame.points, "points", colours, size=6, opacity=0.9), "showlegend": False})
    traces.append(
        {
            "type": "scatter",
            "x": [frame.chosen[0]],
            "y": [frame.chosen[1]],
            "mode": "markers",
            "showlegend": False,
            "hovertemplate": "★ (%{x:.2f}, %{y:.2f})<extra></extra>",
            "marker": {
                "symbol": "star",
                "size": 22,
                "color": "#111111",
                "line": {"color": "#FFFFFF", "width": 2},
            },
        }
    )
    if show_cells:  # an empty trace that carries the colour bar of the cells
        traces.append(
            {
                "type": "scatter",
                "x": [None],
                "y": [None],
                "mode": "markers",
                "showlegend": False,
                "hoverinfo": "skip",
                "marker": {
                    "color": [0],
                    "cmin": -2,
                    "cmax": 2,
                    "showscale": True,
                    "colorscale": [[i / (len(AREA_COLOURS) - 1), c] for i, c in enumerate(AREA_COLOURS)],
                    "colorbar": {
                        "title": {"text": "log(area change) of a cell", "side": "top"},
                        "orientation": "h",
                        "thickness": 12,
                        "len": 0.75,
                        "x": 0.5,
                        "y": -0.07,
                        "yanchor": "top",
                        "outlinewidth": 0,
                        "tickvals": [-2, -1, 0, 1, 2],
                        "ticktext": ["−2 squeezed", "−1", "0 kept", "+1", "+2 stretched"],
                    },
                },
            }
        )
    layout = canvas(frame.label, extent, height=640, legend=False)
    layout["margin"] = {"l": 30, "r": 10, "t": 46, "b": 110}
    return go.Figure({"data": traces, "layout": layout})


def log_det_figure(labels: Sequence[str], log_dets: Sequence[float], current: int) -> go.Figure:
    """Each layer's log|det| at the chosen point as a bar; the layers up to the slider's in colour."""
    colours = [MODEL_COLOUR if index < current else "#C9D1DC" for index in range(len(log_dets))]
    if 0 < current <= len(log_dets):
        colours[current - 1] = "#0B2F6B"
    names = [label.split(":")[0] for label in labels]
    span = max(0.5, max((abs(value) for value in log_dets), default=0.5)) * 1.9
    bars = {
        "type": "bar",
        "x": list(log_dets),
        "y": names,
        "orientation": "h",
        "marker": {"color": colours},
        "text": [f"{value:+.3f}" for value in log_dets],
        "textposition": "outside",
        "cliponaxis": False,
        "textfont": {"size": 14},
        "customdata": list(labels),
        "hovertemplate": "%{customdata}<br>log|det| = %{x:.4f}<extra></extra>",
    }
    layout = chart_layout(
        "log|det J| of each layer at ★",
        640,
        {"l": 44, "r": 20, "t": 46, "b": 50},
        xaxis={
            "range": [-span, span],
            "zeroline": True,
            "zerolinecolor": "#5A606B",
            "zerolinewidth": 2,
            "gridcolor": "#ECEEF2",
            "title": {"text": "log|det J|  (0 = area kept)"},
        },
        yaxis={"autorange": "reversed", "title": {"text": "layer"}, "type": "category"},
        bargap=0.3,
        showlegend=False,
    )
    return go.Figure({"data": [bars], "layout": layout})


def race_figure(
    histories: dict[str, tuple[Sequence[int], Sequence[float]]], entropy: float | None
) -> go.Figure:
    """Smoothed training loss of each model in the race on one chart."""
    colours = {"NICE": "#D6404E", "RealNVP": MODEL_COLOUR}
    traces = [
        {
            "type": "scatter",
            "x": list(steps),
            "y": smooth(losses),
            "mode": "lines",
            "name": name,
            "line": {"color": colours.get(name, "#333333"), "width": 3},
        }
        for name, (steps, losses) in histories.items()
        if len(steps)
    ]
    references = [(entropy, ENTROPY_COLOUR, f"target entropy ≈ {entropy:.2f}")] if entropy is not None else []
    shapes, annotations = reference_lines([r for r in references if math.isfinite(r[0])])
    layout = chart_layout(
        "Training loss (smoothed, nats)",
        380,
        {"l": 50, "r": 16, "t": 46, "b": 40},
        xaxis={"title": {"text": "step"}, "gridcolor": "#ECEEF2"},
        yaxis={"gridcolor": "#ECEEF2"},
        shapes=shapes,
        annotations=annotations,
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.18, "yanchor": "top"},
    )
    return go.Figure({"data": traces, "layout": layout})


def draw_canvas_figure(spots: np.ndarray, extent: float, spacing: float, box: bool = False) -> go.Figure:
    """The drawing canvas: faint clickable spots on a lattice and the spots chosen so far.

    Plotly reports selections of existing points only, so every lattice spot is a faint marker. With
    ``box=False`` a click selects one (plotly ignores clicks in box mode); with ``box=True`` dragging a
    box selects every spot inside it.
    """
    axis = np.arange(-extent + spacing / 2, extent, spacing)
    xs, ys = np.meshgrid(axis, axis)
    faint = {"marker": {"opacity": 0.22}}
    traces = [
        {
            "type": "scatter",
            "x": xs.flatten(),
            "y": ys.flatten(),
            "mode": "markers",
            "name": "canvas",
            "marker": {"size": 6, "color": "#AEB4BE", "opacity": 0.22},
            "hovertemplate": "add a point at (%{x:.2f}, %{y:.2f})<extra></extra>",
            "selected": faint,
            "unselected": faint,
        }
    ]
    if len(spots):
        traces.append(
            {
                "type": "scatter",
                "x": spots[:, 0],
                "y": spots[:, 1],
                "mode": "markers",
                "name": "your points",
                "hoverinfo": "skip",
                "marker": {"size": 9, "color": DATA_COLOUR, "line": {"color": "#8A4A0F", "width": 1}},
            }
        )
    title = "Drag a box to add points" if box else "Click to add a point"
    layout = canvas(title, extent, height=430, legend=False)
    layout["title"]["font"]["size"] = 17
    layout.update(
        dragmode="select" if box else False,
        clickmode="event+select",
        margin={"l": 26, "r": 6, "t": 36, "b": 26},
    )
    return go.Figure({"data": traces, "layout": layout})
