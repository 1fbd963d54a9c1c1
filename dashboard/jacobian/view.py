"""The Jacobian page's parts: models and points to check, the log|det| table, heatmaps of one coupling."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from torch import Tensor

from dashboard.services import state
from flows import Coupling, Dense, Flow, Gaussian, Logit, Scaling, registry
from flows.data import dequantize
from flows.jacobian import check_log_dets, coupling_jacobian_xy
from flows.training import TrainConfig, build_model

from .image_view import LeafJacobian, build_fresh_image_flow, leaf_jacobian, leaf_names

MNIST_DIMS = 784
READABLE_DIMS = 8  # the small model whose every Jacobian entry is printed
ANNOTATE_UP_TO = 32  # heatmaps up to this n get a number in every cell


# --- what to check -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """A model to check: a fresh one (``run_path`` empty) or a run's checkpoint.

    A fresh flow is the identity (its conditioners' last layers start at zero, so every log|det|
    is 0); unless ``identity``, those layers are re-drawn at random, seeded, so there is something
    to check.
    """

    kind: str = "realnvp"  # a flow family of flows.registry (fresh models)
    dims: int = MNIST_DIMS  # 784: MNIST-shaped, checkerboard split, Logit last; else a small even n
    blocks: int = 2
    hidden: int = 64
    seed: int = 0
    identity: bool = False
    run_path: str = ""  # a run folder: load checkpoints/<which>.pt instead
    which: str = "last"
    checkpoint_mtime: float = 0.0  # part of the cache key: a newer checkpoint is checked again

    @property
    def label(self) -> str:
        if self.run_path:
            return f"run {self.run_path.rstrip('/').rsplit('/', 1)[-1]} ({self.which}.pt)"
        shape = "MNIST-shaped, n = 784" if self.dims == MNIST_DIMS else f"n = {self.dims}"
        if registry.get_family(self.kind).image_shaped and self.dims != MNIST_DIMS:
            shape = f"1x8x8, n = {self.dims}"
        return f"fresh {registry.get_family(self.kind).title} ({shape})"


@dataclass(frozen=True)
class PointSpec:
    """The data point x: a dequantized MNIST test digit, or a random point (seeded)."""

    source: str = "random"  # "digit" or "random"
    index: int = 0  # test digit index
    seed: int = 0


def randomise_last_layers_(model: Flow, seed: int) -> Flow:
    """Re-draws every all-zero Dense layer like a fresh ``nn.Linear`` (uniform +-1/sqrt(in)), and
    NICE's scaling from N(0, 0.1^2), so a fresh flow is no longer the identity. In place; seeded."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Dense) and not module.weight.any() and not module.bias.any():
                bound = 1.0 / math.sqrt(module.in_features)
                for parameter in (module.weight, module.bias):
                    parameter.copy_(torch.rand(parameter.shape, generator=generator) * 2 * bound - bound)
            elif isinstance(module, Scaling):
                module.log_scale.copy_(0.1 * torch.randn(module.log_scale.shape, generator=generator))
    return model


def build_fresh_model(source: ModelSource) -> Flow:
    """The fresh flow ``source`` describes; MNIST-shaped ones are built as the trainer builds them."""
    family = registry.get_family(source.kind)
    if family.image_shaped:
        return build_fresh_image_flow(family, source.dims, source.seed, source.identity)
    if source.dims < 2 or source.dims % 2:
        raise ValueError(f"a coupling needs an even number of dimensions, got n = {source.dims}")
    with torch.random.fork_rng():
        torch.manual_seed(source.seed)
        if source.dims == MNIST_DIMS:
            config = TrainConfig(
                model=source.kind, dataset="mnist", blocks=source.blocks, hidden=[source.hidden]
            )
            model = build_model(config)
        else:
            model = family.build(Gaussian([source.dims]), hidden=[source.hidden], blocks=source.blocks)
    if not source.identity:
        randomise_last_layers_(model, source.seed)
    return model.eval()


def load_model(source: ModelSource) -> Flow:
    """The model of ``source``: a run's checkpoint (cached by the dashboard) or a fresh model."""
    if source.run_path:
        return state.run_model(source.run_path, source.which)[0]
    return build_fresh_model(source)


def ends_in_pixels(model: Flow) -> bool:
    """True when the flow's last layer maps onto pixel space [0, 1)^n (a Logit layer)."""
    return len(model.layers) > 0 and isinstance(model.layers[-1], Logit)


def data_point(model: Flow, point: PointSpec, images: Tensor | None) -> Tensor:
    """The point x ``[1, *shape]`` in data space, float64.

    A digit is dequantized, (k + u) / 256 with seeded u; a random point is uniform noise in
    [0, 1)^n for pixel-space flows and N(0, I) otherwise.
    """
    generator = torch.Generator().manual_seed(point.seed)
    shape = model.shape
    n = math.prod(shape)
    if point.source == "digit":
        if images is None:
            raise ValueError(
                "no MNIST test digits on disk; download them on the Home page or pick a random point"
            )
        if n != MNIST_DIMS:
            raise ValueError(f"a digit has 784 pixels but this model has n = {n}; pick a random point")
        if not 0 <= point.index < len(images):
            raise ValueError(f"digit index must lie in 0..{len(images) - 1}, got {point.index}")
        x = dequantize(images[point.index : point.index + 1], generator)
    elif ends_in_pixels(model):
        x = torch.rand(1, n, generator=generator)
    else:
        x = torch.randn(1, n, generator=generator)
    return x.reshape(1, *shape).double()


# --- the log|det| table --------------------------------------------------------------------------------

ANALYTIC = "analytic log|det|"
AUTOGRAD = "autograd log|det| (float64)"
DIFFERENCE = "|difference|"


@dataclass
class LogDetCheck:
    """The table of a :class:`flows.jacobian.LogDetReport` at one point, and its timings."""

    table: pd.DataFrame  # one row per layer, then "whole flow"
    analytic_seconds: float
    autograd_seconds: float
    dims: int

    @property
    def max_abs_error(self) -> float:
        return float(self.table[DIFFERENCE].max())


def point_labels(model: Flow, point: PointSpec) -> Tensor | None:
    """The class a conditional model is checked for: the digit's own, or 0 for a random point."""
    if getattr(model, "num_classes", 0) == 0:
        return None
    labels = state.test_labels("mnist") if point.source == "digit" else None
    return torch.tensor([int(labels[point.index]) if labels is not None else 0])


def log_det_check(model: Flow, x: Tensor, labels: Tensor | None = None) -> LogDetCheck:
    """Runs :func:`flows.jacobian.check_log_dets` on one point and tabulates it."""
    report = check_log_dets(model, x, labels)
    rows = [*report.rows, report.total]
    table = pd.DataFrame(
        {
            "layer": [row.name for row in rows],
            ANALYTIC: [float(row.analytic[0]) for row in rows],
            AUTOGRAD: [float(row.autograd[0]) for row in rows],
            DIFFERENCE: [float(row.abs_error[0]) for row in rows],
        }
    )
    return LogDetCheck(table, report.analytic_seconds, report.autograd_seconds, math.prod(model.shape))


# --- one coupling's Jacobian ---------------------------------------------------------------------------


@dataclass
class CouplingJacobian:
    """One coupling's Jacobian at the point where the flow meets it, rows and columns in (x, y) order."""

    matrix: np.ndarray  # [n, n] float64
    label: str  # e.g. "2: f1: y <- exp(su(x)) * y + u(x)"
    changes: str  # "x" (the seed's f0, upper block-triangular) or "y" (f1, lower)
    split: str  # "half", "interleave" or "checkerboard"
    analytic_log_abs_det: float

    @property
    def half(self) -> int:
        return len(self.matrix) // 2

    def blocks(self) -> dict[str, np.ndarray]:
        """The four blocks: "xx" = d x'/d x, "xy" = d x'/d y, "yx" = d y'/d x, "yy" = d y'/d y."""
        k = self.half
        m = self.matrix
        return {"xx": m[:k, :k], "xy": m[:k, k:], "yx": m[k:, :k], "yy": m[k:, k:]}

    def facts(self) -> pd.DataFrame:
        """What the heatmap shows, measured: the zero block, the identity block, the diagonal block."""
        b = self.blocks()
        changed, kept = ("xx", "yy") if self.changes == "x" else ("yy", "xx")
        zero = "yx" if self.changes == "x" else "xy"
        conditioner = "xy" if self.changes == "x" else "yx"
        diagonal = np.diag(b[changed])
        rows = [
            (f"zero block d{zero[0]}'/d{zero[1]}", "max |entry|", float(np.abs(b[zero]).max())),
            (
                f"kept half d{kept[0]}'/d{kept[1]}",
                "max |entry - I|",
                float(np.abs(b[kept] - np.eye(self.half)).max()),
            ),
            (
                f"changed half d{changed[0]}'/d{changed[1]}",
                "max |off-diagonal entry|",
                float(np.abs(b[changed] - np.diag(diagonal)).max()),
            ),
            (
                f"conditioner block d{conditioner[0]}'/d{conditioner[1]}",
                "max |entry| (never enters det)",
                float(np.abs(b[conditioner]).max()),
            ),
            ("diagonal of the changed half", "sum of log|entry|", float(np.log(np.abs(diagonal)).sum())),
            ("the layer's analytic log|det|", "value", self.analytic_log_abs_det),
        ]
        return pd.DataFrame(rows, columns=["block", "measured", "value"])


def coupling_indices(model: Flow) -> list[int]:
    """Positions in ``model.layers`` of the coupling layers (f0 and f1)."""
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, Coupling)]


def coupling_jacobian(model: Flow, x: Tensor, layer_index: int) -> CouplingJacobian:
    """The Jacobian of coupling ``layer_index`` where the flow's forward pass from z = F^-1(x) meets it."""
    layer = model.layers[layer_index]
    if not isinstance(layer, Coupling):
        raise ValueError(f"layer {layer_index} is a {type(layer).__name__}, not a coupling")
    model = _float64_copy(model)
    layer = model.layers[layer_index]
    with torch.no_grad():
        h = model.inverse(x.double())[0].reshape(1, -1)
        for earlier in model.layers[:layer_index]:
            h = earlier(h)[0]
        analytic = float(layer(h)[1][0])
    matrix = coupling_jacobian_xy(layer, h[0]).detach().numpy()
    label = f"{layer_index}: {layer.label or type(layer).__name__}"
    return CouplingJacobian(matrix, label, layer.changes, layer.split.kind, analytic)


def _float64_copy(model: Flow) -> Flow:
    return copy.deepcopy(model).double().eval()


def _axis_labels(half: int) -> tuple[list[str], list[str]]:
    inputs = [f"x{i + 1}" for i in range(half)] + [f"y{i + 1}" for i in range(half)]
    outputs = [f"x'{i + 1}" for i in range(half)] + [f"y'{i + 1}" for i in range(half)]
    return inputs, outputs


def _block_lines(fig: go.Figure, half: int, n: int, color: str = "black") -> None:
    """Lines between the x and y halves, so the four blocks stand out."""
    edge = half - 0.5
    fig.add_shape(type="line", x0=edge, x1=edge, y0=-0.5, y1=n - 0.5, line={"color": color, "width": 2})
    fig.add_shape(type="line", x0=-0.5, x1=n - 0.5, y0=edge, y1=edge, line={"color": color, "width": 2})


def readable_heatmap(jac: CouplingJacobian) -> go.Figure:
    """A heatmap with every entry printed in its cell (for small n), diverging colours around 0."""
    n, half = len(jac.matrix), jac.half
    inputs, outputs = _axis_labels(half)
    text = [["0" if value == 0 else f"{value:.2f}" for value in row] for row in jac.matrix]
    limit = float(np.abs(jac.matrix).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=jac.matrix,
            x=list(range(n)),
            y=list(range(n)),
            text=text,
            texttemplate="%{text}",
            textfont={"size": 16 if n <= 8 else 11},
            colorscale="RdBu",
            reversescale=True,
            zmin=-limit,
            zmax=limit,
            customdata=[[f"d{o}/d{i}" for i in inputs] for o in outputs],
            hovertemplate="%{customdata} = %{z:.6g}<extra></extra>",
            # below the matrix, so a half-width column leaves the cells room for their numbers
            colorbar={
                "title": {"text": "entry", "side": "top"},
                "orientation": "h",
                "thickness": 12,
                "y": -0.04,
                "yanchor": "top",
            },
        )
    )
    _block_lines(fig, half, n)
    axis = {"tickmode": "array", "tickvals": list(range(n)), "tickfont": {"size": 15}}
    fig.update_xaxes(axis, ticktext=inputs, side="top", title="input (column)")
    fig.update_yaxes(axis, ticktext=outputs, autorange="reversed", title="output (row)", scaleanchor="x")
    fig.update_layout(height=480 if n <= 8 else 720, margin={"l": 10, "r": 10, "t": 60, "b": 60})
    return fig


def signed_log_rgb(matrix: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Colours ``matrix`` for an image: red > 0, blue < 0, white exactly 0; intensity on a log scale
    from ``floor`` to the largest |entry|, so tiny non-zero entries still show. uint8 ``[n, n, 3]``."""
    magnitude = np.abs(matrix)
    top = max(float(magnitude.max()), floor)
    strength = np.log1p(magnitude / floor) / math.log1p(top / floor)  # 0 at 0, 1 at the largest entry
    fade = (255 * (1 - 0.85 * strength)).astype(np.uint8)
    full = np.full_like(fade, 255)
    red = np.stack([full, fade, fade], axis=-1)
    blue = np.stack([fade, fade, full], axis=-1)
    rgb = np.where((matrix < 0)[..., None], blue, red)
    rgb[magnitude == 0] = 255
    return rgb


def image_heatmap(jac: CouplingJacobian) -> go.Figure:
    """The whole n x n Jacobian as an image (one pixel per entry), with lines between the halves."""
    n, half = len(jac.matrix), jac.half
    fig = go.Figure(
        go.Image(z=signed_log_rgb(jac.matrix), hovertemplate="row %{y}, column %{x}<extra></extra>")
    )
    _block_lines(fig, half, n, color="#333")
    names = [("x'", "x"), ("y'", "y")]
    for position, (output, input_) in zip((half / 2, half + half / 2), names, strict=True):
        fig.add_annotation(
            x=position, y=-0.5, yref="y", text=input_, showarrow=False, yshift=14, font={"size": 18}
        )
        fig.add_annotation(
            x=-0.5, y=position, xref="x", text=output, showarrow=False, xshift=-16, font={"size": 18}
        )
    fig.update_xaxes(showticklabels=False, title="input (column), x half then y half")
    fig.update_yaxes(showticklabels=False, title="output (row)")
    fig.update_layout(height=760, margin={"l": 40, "r": 10, "t": 40, "b": 40})
    return fig


def heatmap(jac: CouplingJacobian) -> go.Figure:
    """The readable heatmap for small n, the image for large n."""
    return readable_heatmap(jac) if len(jac.matrix) <= ANNOTATE_UP_TO else image_heatmap(jac)


def structure_sentence(jac: CouplingJacobian) -> str:
    """One sentence saying which block is zero and why, for the coupling shown."""
    if jac.changes == "x":
        return (
            "This is the seed's **f0**: it changes $x$ and keeps $y$, so $\\partial y'/\\partial x = 0$ "
            "(lower-left, white) and $\\partial y'/\\partial y = I$: **block upper-triangular**."
        )
    return (
        "This is the seed's **f1**: it changes $y$ and keeps $x$, so $\\partial x'/\\partial y = 0$ "
        "(upper-right, white) and $\\partial x'/\\partial x = I$: **block lower-triangular**."
    )


# --- cached entry points for the page --------------------------------------------------------------------


def _images() -> Tensor | None:
    return state.test_images("mnist")


@st.cache_data(show_spinner="Comparing each layer's log|det| with autograd (float64)...", max_entries=32)
def cached_log_det_check(source: ModelSource, point: PointSpec) -> LogDetCheck:
    """:func:`log_det_check` for a model and a point, cached by their descriptions."""
    model = load_model(source)
    x = data_point(model, point, _images() if point.source == "digit" else None)
    return log_det_check(model, x, point_labels(model, point))


@st.cache_data(show_spinner=False, max_entries=8)
def cached_leaf_names(source: ModelSource, point: PointSpec) -> list[str]:
    """The leaf layers of an image flow, in forward order."""
    model = load_model(source)
    x = data_point(model, point, _images() if point.source == "digit" else None)
    return leaf_names(model, x, point_labels(model, point))


@st.cache_data(show_spinner="Computing the layer's full Jacobian with autograd...", max_entries=32)
def cached_leaf_jacobian(source: ModelSource, point: PointSpec, index: int) -> LeafJacobian:
    """:func:`leaf_jacobian` of an image flow, cached by the model's and the point's descriptions."""
    model = load_model(source)
    x = data_point(model, point, _images() if point.source == "digit" else None)
    return leaf_jacobian(model, x, point_labels(model, point), index)


def leaf_heatmap(jac: LeafJacobian) -> go.Figure:
    """A leaf layer's whole Jacobian as an image, one pixel per entry (red > 0, blue < 0, white 0)."""
    fig = go.Figure(
        go.Image(z=signed_log_rgb(jac.matrix), hovertemplate="row %{y}, column %{x}<extra></extra>")
    )
    fig.update_xaxes(showticklabels=False, title="input (column): channel by channel, row by row")
    fig.update_yaxes(showticklabels=False, title="output (row)")
    fig.update_layout(height=620, margin={"l": 40, "r": 10, "t": 20, "b": 40})
    return fig


@st.cache_data(show_spinner="Computing the coupling's full Jacobian with autograd...", max_entries=32)
def cached_coupling_jacobian(source: ModelSource, point: PointSpec, layer_index: int) -> CouplingJacobian:
    """:func:`coupling_jacobian` cached by the model's and the point's descriptions."""
    model = load_model(source)
    x = data_point(model, point, _images() if point.source == "digit" else None)
    return coupling_jacobian(model, x, layer_index)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_layer_labels(source: ModelSource) -> dict[int, str]:
    """``{index: label}`` of the model's coupling layers."""
    model = load_model(source)
    return {i: f"{i}: {model.layers[i].label}" for i in coupling_indices(model)}


def format_seconds(seconds: float) -> str:
    """ "0.42 ms", "12.3 ms" or "1.52 s"."""
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
