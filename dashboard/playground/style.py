"""The Flow Playground's figure style, read on a projector: colours, fonts, and the layout and trace dicts
that every figure of :mod:`dashboard.playground.figures` is built from."""

from __future__ import annotations

from typing import Any

import numpy as np

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
#: Decimals of the coordinates sent to the browser: a thousandth of a canvas unit is far below a pixel,
#: and the JSON of a live refresh is about half the size of full precision's.
COORDINATE_DECIMALS = 3

Spec = dict[str, Any]


def area_bin(value: float) -> int:
    """Index into AREA_COLOURS of a log area ratio; KEPT_AREA_BIN (white) holds |value| < 0.05."""
    return int(np.searchsorted(np.asarray(AREA_EDGES), value, side="right"))


def title(text: str) -> Spec:
    """A chart title, centred at the top."""
    return {
        "text": text,
        "font": {"size": 20, "color": TEXT_COLOUR},
        "x": 0.5,
        "xanchor": "center",
        "y": 0.975,
        "yanchor": "top",
    }


def canvas(text: str, extent: float, height: int = PANEL_HEIGHT, legend: bool = True) -> Spec:
    """Layout of a square [-extent, extent]^2 canvas with a title and the legend underneath."""
    title_spec = title(text)
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
        "title": title_spec,
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


def points(
    points: np.ndarray, name: str, colour: str | list[str], size: float = 5, opacity: float = 0.6
) -> Spec:
    """A scatter trace of the finite rows of ``points`` ``[n, 2]`` (``colour``: one, or one per row)."""
    finite = np.isfinite(points).all(1)
    if isinstance(colour, list):
        colour = [c for c, keep in zip(colour, finite, strict=True) if keep]
    return {
        "type": "scatter",
        "x": np.round(points[finite, 0], COORDINATE_DECIMALS),
        "y": np.round(points[finite, 1], COORDINATE_DECIMALS),
        "mode": "markers",
        "name": name,
        "marker": {"size": size, "color": colour, "opacity": opacity, "line": {"width": 0}},
        "hoverinfo": "skip",
    }


def with_breaks(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[k, m, 2]`` polylines -> x and y arrays with NaN between lines (one trace for all)."""
    breaks = np.full((lines.shape[0], 1, 2), np.nan)
    joined = np.round(np.concatenate([lines, breaks], 1).reshape(-1, 2), COORDINATE_DECIMALS)
    return joined[:, 0], joined[:, 1]


def reference_lines(references: list[tuple[float, str, str]]) -> tuple[list[Spec], list[Spec]]:
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


def chart_layout(text: str, height: int, margin: Spec, **rest: Any) -> Spec:
    """Layout of a plain (non-square) chart: title, font, height, margin, white background, then ``rest``."""
    return {
        "title": title(text),
        "font": FONT,
        "height": height,
        "margin": margin,
        "plot_bgcolor": "#FFFFFF",
        "paper_bgcolor": "#FFFFFF",
        **rest,
    }
