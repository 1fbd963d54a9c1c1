"""Plotly figures of the Flow Playground, styled to read well on a projector.

Each function takes plain arrays (from :mod:`flows.toy_views` and the run's history) and
returns a ``plotly.graph_objects.Figure``; nothing here trains or touches streamlit. Figures are built
from one dict each: plotly validates a whole dict in a few milliseconds, while trace-by-trace updates
and ``add_hline`` cost tens, which matters at two refreshes a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from flows.toy_views import LayerFrame

DATA_COLOUR = "#F28E2B"  # orange: the target's points
MODEL_COLOUR = "#2F6DB5"  # blue: the flow's samples
GRID_COLOURS = ("#D6404E", "#2F6DB5")  # lines of constant z2, lines of constant z1
ENTROPY_COLOUR = "#2A9D55"
GAUSSIAN_COLOUR = "#7E8590"
TEXT_COLOUR = "#1F2430"
#: White where the model puts no mass, deep blue where it puts most.
DENSITY_SCALE = [
    [0.0, "#FFFFFF"],
    [0.15, "#DCEBF7"],
    [0.4, "#8EC1E0"],
    [0.7, "#3A85C3"],
    [1.0, "#0B2F6B"],
]
#: log(area ratio) bins of the layer view's cells: blue squeezed, white kept, red stretched.
AREA_EDGES = (-1.5, -0.75, -0.3, -0.05, 0.05, 0.3, 0.75, 1.5)
AREA_COLOURS = (
    "#2166AC",
    "#4393C3",
    "#92C5DE",
    "#D1E5F0",
    "#FFFFFF",
    "#FDDBC7",
    "#F4A582",
    "#D6604D",
    "#B2182B",
)
KEPT_AREA_BIN = 4
FONT = {"family": "'Source Sans Pro', 'Source Sans 3', Arial, sans-serif", "size": 15, "color": TEXT_COLOUR}
PANEL_HEIGHT = 470

Spec = dict[str, Any]


def _title(text: str) -> Spec:
    return {
        "text": text,
        "font": {"size": 20, "color": TEXT_COLOUR},
        "x": 0.5,
        "xanchor": "center",
        "y": 0.975,
        "yanchor": "top",
    }


def _canvas(title: str, extent: float, height: int = PANEL_HEIGHT, legend: bool = True) -> Spec:
    """Layout of a square [-extent, extent]^2 canvas with a title and the legend underneath."""
    axis = {
        "range": [-extent, extent],
        "constrain": "domain",  # keep the ranges, shrink the plot area to a square
        "showgrid": True,
        "gridcolor": "#ECEEF2",
        "zeroline": False,
        "ticks": "",
        "showline": True,
        "linecolor": "#C9CED6",
        "mirror": True,
        "tickfont": {"size": 12, "color": "#7A808A"},
    }
    return {
        "title": _title(title),
        "font": FONT,
        "height": height,
        "margin": {"l": 30, "r": 10, "t": 46, "b": 44},
        "plot_bgcolor": "#FFFFFF",
        "paper_bgcolor": "#FFFFFF",
        "xaxis": axis,
        "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1, "constraintoward": "top"},
        "showlegend": legend,
        "legend": {
            "orientation": "h",
            "x": 0.5,
            "xanchor": "center",
            "y": -0.035,
            "yanchor": "top",
            "font": {"size": 15},
            "bgcolor": "rgba(255,255,255,0)",
            "itemsizing": "constant",
        },
        "uirevision": "canvas",  # keep the user's zoom across refreshes
    }


def _points(
    points: np.ndarray, name: str, colour: str | list[str], size: float = 5, opacity: float = 0.6
) -> Spec:
    finite = np.isfinite(points).all(1)
    if isinstance(colour, list):
        colour = [c for c, keep in zip(colour, finite, strict=True) if keep]
    return {
        "type": "scatter",
        "x": points[finite, 0],
        "y": points[finite, 1],
        "mode": "markers",
        "name": name,
        "marker": {"size": size, "color": colour, "opacity": opacity, "line": {"width": 0}},
        "hoverinfo": "skip",
    }


def _with_breaks(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[k, m, 2]`` polylines -> x and y arrays with NaN between lines (one trace for all)."""
    breaks = np.full((lines.shape[0], 1, 2), np.nan)
    joined = np.concatenate([lines, breaks], 1).reshape(-1, 2)
    return joined[:, 0], joined[:, 1]


def samples_figure(data: np.ndarray, samples: np.ndarray | None, extent: float) -> go.Figure:
    """The target's points (orange) and the flow's samples x = F(z) (blue)."""
    traces = [_points(data, "data", DATA_COLOUR, opacity=0.55)]
    if samples is not None:
        traces.append(_points(samples, "model samples  x = F(z)", MODEL_COLOUR, opacity=0.6))
    return go.Figure({"data": traces, "layout": _canvas("Data vs model samples", extent)})


def density_limits(log_density: np.ndarray) -> tuple[np.ndarray, float]:
    """p(x) from log p(x), and the colour scale's top: the 99.5% quantile, so one spike cannot wash it out."""
    density = np.exp(np.clip(np.nan_to_num(log_density, nan=-50.0), -50, 50))
    return density, max(float(np.quantile(density, 0.995)), 1e-6)


def density_figure(
    log_density: np.ndarray, data: np.ndarray, extent: float, title: str | None = None
) -> go.Figure:
    """The learned density p(x) as a heatmap, the data dotted on top."""
    axis = np.linspace(-extent, extent, log_density.shape[0])
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
    traces = [heatmap, _points(data, "data", DATA_COLOUR, size=3, opacity=0.5)]
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
    layout = _canvas(title or "Learned density p(x), data on top", extent)
    return go.Figure({"data": traces, "layout": layout})


def warped_grid_figure(grid: np.ndarray, data: np.ndarray, extent: float) -> go.Figure:
    """The prior's regular grid after F: ``grid [2, lines, points, 2]`` drawn over faint data."""
    traces = [_points(data, "data", "#B8BDC6", size=3.5, opacity=0.5)]
    for family, colour, name in zip(grid, GRID_COLOURS, ("z₂ = const", "z₁ = const"), strict=True):
        xs, ys = _with_breaks(family)
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
    return go.Figure({"data": traces, "layout": _canvas("Warped grid: z-grid pushed through F", extent)})


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


def _reference_lines(references: list[tuple[float, str, str]]) -> tuple[list[Spec], list[Spec]]:
    """Dashed full-width lines with a label at the right: (shapes, annotations) of the layout."""
    shapes, annotations = [], []
    for level, colour, text in references:
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": level,
                "y1": level,
                "line": {"color": colour, "width": 2, "dash": "dash"},
            }
        )
        annotations.append(
            {
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "yref": "y",
                "y": level,
                "yanchor": "bottom",
                "text": text,
                "showarrow": False,
                "font": {"color": colour, "size": 15},
                "bgcolor": "rgba(255,255,255,0.8)",
            }
        )
    return shapes, annotations


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
    shapes, annotations = _reference_lines(references)
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
    layout = {
        "title": _title("Loss: negative log-likelihood"),
        "font": FONT,
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 46, "b": 44},
        "plot_bgcolor": "#FFFFFF",
        "paper_bgcolor": "#FFFFFF",
        "xaxis": {
            "title": {"text": "step", "standoff": 2},
            "gridcolor": "#ECEEF2",
            "showline": True,
            "linecolor": "#C9CED6",
            "rangemode": "tozero",
        },
        "yaxis": yaxis,
        "shapes": shapes,
        "annotations": annotations,
        "legend": {
            "orientation": "h",
            "x": 0.5,
            "xanchor": "center",
            "y": -0.13,
            "yanchor": "top",
            "font": {"size": 14},
        },
    }
    return go.Figure({"data": traces, "layout": layout})


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


def area_bin(value: float) -> int:
    """Index into AREA_COLOURS of a log area ratio; KEPT_AREA_BIN (white) holds |value| < 0.05."""
    return int(np.searchsorted(np.asarray(AREA_EDGES), value, side="right"))


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
            xs, ys = _with_breaks(np.stack(members))
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
    xs, ys = _with_breaks(np.concatenate([rows, columns]))
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
    traces.append({**_points(frame.points, "points", colours, size=6, opacity=0.9), "showlegend": False})
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
    layout = _canvas(frame.label, extent, height=640, legend=False)
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
    layout = {
        "title": _title("log|det J| of each layer at ★"),
        "font": FONT,
        "height": 640,
        "margin": {"l": 44, "r": 20, "t": 46, "b": 50},
        "plot_bgcolor": "#FFFFFF",
        "paper_bgcolor": "#FFFFFF",
        "xaxis": {
            "range": [-span, span],
            "zeroline": True,
            "zerolinecolor": "#5A606B",
            "zerolinewidth": 2,
            "gridcolor": "#ECEEF2",
            "title": {"text": "log|det J|  (0 = area kept)"},
        },
        "yaxis": {"autorange": "reversed", "title": {"text": "layer"}, "type": "category"},
        "bargap": 0.3,
        "showlegend": False,
    }
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
    shapes, annotations = _reference_lines([r for r in references if math.isfinite(r[0])])
    layout = {
        "title": _title("Training loss (smoothed, nats)"),
        "font": FONT,
        "height": 380,
        "margin": {"l": 50, "r": 16, "t": 46, "b": 40},
        "plot_bgcolor": "#FFFFFF",
        "paper_bgcolor": "#FFFFFF",
        "xaxis": {"title": {"text": "step"}, "gridcolor": "#ECEEF2"},
        "yaxis": {"gridcolor": "#ECEEF2"},
        "shapes": shapes,
        "annotations": annotations,
        "legend": {"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.18, "yanchor": "top"},
    }
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
    layout = _canvas(title, extent, height=430, legend=False)
    layout["title"]["font"]["size"] = 17
    layout.update(
        dragmode="select" if box else False,
        clickmode="event+select",
        margin={"l": 26, "r": 6, "t": 36, "b": 26},
    )
    return go.Figure({"data": traces, "layout": layout})
