"""Plotly charts of training curves: train loss and test bits/dim, one or several runs overlaid.

Curves are downsampled to at most ``MAX_POINTS`` points per line (bucket means, the last point kept),
so a chart stays light however long a run trains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from flows.data import bits_per_dim
from flows.training import runs

#: Points per line after downsampling.
MAX_POINTS = 2000
#: Line colours of overlaid runs (colour-blind safe, readable on a projector).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FONT_SIZE = 16


@dataclass(frozen=True)
class Curves:
    """One run's curves: per-step train loss and per-evaluation test loss, in nats."""

    label: str
    steps: np.ndarray  # int [n]
    losses: np.ndarray  # float [n]
    eval_steps: np.ndarray  # int [m]
    test_losses: np.ndarray  # float [m]
    dims: int  # coordinates per sample: 784 for images, 2 for the toys
    is_image: bool

    def bits_per_dim(self, losses: np.ndarray) -> np.ndarray:
        """Bits/dim in 8-bit pixel space of losses in nats on [0, 1)^dims (``flows.data.bits_per_dim``)."""
        return bits_per_dim(-np.asarray(losses, dtype=np.float64), self.dims)


def curves_from_lists(
    label: str,
    steps: Sequence[int],
    losses: Sequence[float],
    eval_steps: Sequence[int],
    test_losses: Sequence[float],
    dims: int,
    is_image: bool,
) -> Curves:
    """Curves from the in-memory lists of a run the dashboard trains."""
    return Curves(
        label,
        np.asarray(steps, dtype=np.int64),
        np.asarray(losses, dtype=np.float64),
        np.asarray(eval_steps, dtype=np.int64),
        np.asarray(test_losses, dtype=np.float64),
        dims,
        is_image,
    )


def curves_from_metrics(label: str, records: list[dict[str, Any]], dims: int, is_image: bool) -> Curves:
    """Curves from the lines of a run's metrics.jsonl (as written by main.py or the dashboard)."""
    step_rows = [r for r in records if r.get("kind") == "step" and _finite(r.get("loss"))]
    eval_rows = [r for r in records if r.get("kind") == "eval" and _finite(r.get("test_loss"))]
    return curves_from_lists(
        label,
        [int(r["step"]) for r in step_rows],
        [float(r["loss"]) for r in step_rows],
        [int(r["step"]) for r in eval_rows],
        [float(r["test_loss"]) for r in eval_rows],
        dims,
        is_image,
    )


def read_curves(run_path: str | Path) -> Curves | None:
    """Curves of any run folder from its metrics.jsonl; None when its config cannot be read."""
    try:
        config = runs.read_config(run_path)
    except (OSError, ValueError):
        return None
    return curves_from_metrics(Path(run_path).name, runs.read_metrics(run_path), config.dims, config.is_image)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: the means of equal buckets of consecutive points, last point kept.

    Bucket means keep the trend of a noisy loss honest (a stride would pick arbitrary noisy points).
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if len(x) <= max_points:
        return x, y
    buckets = max_points - 1
    edges = np.linspace(0, len(x) - 1, buckets + 1).astype(np.int64)  # bucket b holds [edges[b], edges[b+1])
    sums_x = np.add.reduceat(x[:-1].astype(np.float64), edges[:-1])
    sums_y = np.add.reduceat(y[:-1], edges[:-1])
    counts = np.diff(edges)
    keep = counts > 0
    x_mean = sums_x[keep] / counts[keep]
    y_mean = sums_y[keep] / counts[keep]
    return np.append(x_mean, x[-1]), np.append(y_mean, y[-1])


def curves_figure(
    curves: Sequence[Curves], metric: str = "auto", height: int = 420, title: str | None = None
) -> go.Figure:
    """Train loss (lines) and test loss (markers) of one or more runs against the step.

    ``metric``: "bits_per_dim", "nats", or "auto" (bits/dim when every run is an image run).
    """
    if metric not in ("auto", "bits_per_dim", "nats"):
        raise ValueError(f"metric must be auto, bits_per_dim or nats, got {metric!r}")
    if metric == "auto":
        metric = "bits_per_dim" if curves and all(c.is_image for c in curves) else "nats"
    figure = go.Figure()
    overlay = len(curves) > 1
    for index, run in enumerate(curves):
        colour = PALETTE[index % len(PALETTE)]
        train = run.bits_per_dim(run.losses) if metric == "bits_per_dim" else run.losses
        test = run.bits_per_dim(run.test_losses) if metric == "bits_per_dim" else run.test_losses
        x, y = downsample(run.steps, train)
        prefix = f"{run.label}: " if overlay else ""
        figure.add_trace(
            go.Scattergl(x=x, y=y, mode="lines", name=f"{prefix}train", line={"color": colour, "width": 2})
        )
        if len(run.eval_steps):
            figure.add_trace(
                go.Scatter(
                    x=run.eval_steps,
                    y=test,
                    mode="lines+markers",
                    name=f"{prefix}test",
                    line={"color": colour, "width": 3, "dash": "dot"},
                    marker={"size": 10, "symbol": "diamond"},
                )
            )
    y_title = "bits / dim" if metric == "bits_per_dim" else "loss (nats, −mean log p)"
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        font={"size": FONT_SIZE},
        title=title,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        hovermode="x unified",
        uirevision="keep",  # zoom and legend clicks survive the live updates
        xaxis_title="step",
        yaxis_title=y_title,
    )
    return figure


def histogram_figure(
    values: np.ndarray,
    x_title: str,
    y_title: str = "images",
    height: int = 360,
    bins: int = 60,
    clip_quantile: float = 0.99,
) -> go.Figure:
    """A histogram of per-sample values (e.g. bits/dim of each test digit) with their mean marked.

    Bins span the values up to the ``clip_quantile`` quantile, so a few outliers do not squash the
    rest into one bar; how many lie beyond is written on the chart.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    figure = go.Figure()
    if len(values):
        low, high = float(values.min()), float(np.quantile(values, clip_quantile))
        high = high if high > low else low + 1.0
        size = (high - low) / bins
        figure.add_trace(
            go.Histogram(
                x=values,
                xbins={"start": low, "end": high + size / 2, "size": size},
                marker={"color": PALETTE[0]},
            )
        )
        mean = float(values.mean())
        figure.add_vline(
            x=mean,
            line={"color": PALETTE[3], "width": 3, "dash": "dash"},
            annotation_text=f"mean {mean:.3f}",
            annotation_position="top right",  # inside the plot, under its top edge
        )
        beyond = int((values > high + size / 2).sum())
        if beyond:
            figure.add_annotation(  # above the plot, in the top margin: never on the mean's label
                text=f"{beyond} above {high:.2f} not shown",
                showarrow=False,
                xref="paper",
                yref="paper",
                x=1,
                y=1,
                xanchor="right",
                yanchor="bottom",
            )
        figure.update_xaxes(range=[low - size, high + size])
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        font={"size": FONT_SIZE},
        xaxis_title=x_title,
        yaxis_title=y_title,
        bargap=0.05,
    )
    return figure
