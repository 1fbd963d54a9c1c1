"""The playground's left column: the target's points (a toy, an upload or a drawing) and the model's settings.

:func:`data_controls` returns the :class:`Target` the page trains on; :func:`model_controls` draws the
model and training widgets, whose values :func:`dashboard.playground.session.widget_settings` reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from dashboard.playground import data, figures
from dashboard.playground.run import FlowSettings, model_names
from dashboard.text import plain
from dashboard.widgets import presenter
from flows import registry
from flows.nn import ACTIVATIONS

HIDDEN_CHOICES = {
    "32": (32,),
    "64": (64,),
    "32, 32": (32, 32),
    "64, 64": (64, 64),
    "128, 128": (128, 128),
    "64, 64, 64": (64, 64, 64),
}
#: The model and optimiser a fresh page starts with: 8 blocks of one-layer sin MLPs (64 wide), lr 7e-4,
#: AdamW beta2 0.99, gradients clipped at norm 5. On the spiral (one core, 4 seeds) it reaches 3.04-3.17
#: nats held-out after 2,000 steps (25 s), where 6 blocks of tanh 64-64 (the earlier default, 17 ms a
#: step) reach 3.23-3.41; tanh in the same 8 x 64 net reaches 3.17-3.29 after 3,000. Sin nets make short
#: loss spikes (a batch 1.5 nats above the running median): per 3,000 steps 44-91 at lr 1e-3 and beta2
#: 0.999, 1-22 at 1e-3 and 0.99, 0-8 at 7e-4 and 0.99, which learns only slightly slower.
DEFAULTS = FlowSettings()
LEARNING_RATES = (1e-4, 3e-4, 7e-4, 1e-3, 3e-3, 1e-2, 3e-2)
BATCH_SIZES = (64, 128, 256, 512)
ACTIVATION_CHOICES = tuple(
    name for name in ("sin", "tanh", "relu", "elu", "softplus", "leaky_relu") if name in ACTIVATIONS
)


@dataclass
class Target:
    """The points the page trains on, or why there are none yet."""

    name: str
    train: torch.Tensor | None  # [n, 2]
    test: torch.Tensor | None  # [m, 2]
    key: str  # changes whenever the points change
    entropy: float | None  # nats, estimated
    entropy_note: str
    gaussian_nll: float | None
    problem: str | None = None  # a message for the user when there are no points
    problem_is_error: bool = False


def _no_points(name: str, key: str, problem: str, is_error: bool = False) -> Target:
    """A target without points yet, and what to tell the user."""
    return Target(name, None, None, key, None, "", None, problem=problem, problem_is_error=is_error)


@st.cache_data(show_spinner=False, max_entries=64)
def _toy_split(target: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    train = data.toy_points(target, n, noise, seed)
    test = data.toy_points(target, max(n // 2, 500), noise, seed + 1)
    return train.numpy(), test.numpy()


@st.cache_data(show_spinner=False, max_entries=64)
def _toy_entropy(target: str, noise: float) -> float:
    return data.toy_entropy(target, noise)


@st.cache_data(show_spinner=False, max_entries=16)
def _parse_upload(content: bytes) -> tuple[np.ndarray | None, str]:
    """(points, description) or (None, the error message); cached by the file's bytes."""
    try:
        parsed = data.parse_points_csv(content)
    except ValueError as error:
        return None, str(error)
    return parsed.points.numpy(), parsed.describe()


@st.cache_data(show_spinner=False, max_entries=16)
def _knn_entropy(points: np.ndarray) -> float:
    return data.knn_entropy(torch.from_numpy(points))


def _on_target_change() -> None:
    st.session_state.pg_noise = data.default_noise(st.session_state.pg_target)


def _add_drawn_spots(key: str) -> None:
    """Adds the clicked or box-selected canvas spots to the drawing, then clears the selection."""
    event = st.session_state.get(key)
    points = event["selection"]["points"] if event else []
    new = [[float(point["x"]), float(point["y"])] for point in points if "x" in point and "y" in point]
    if new:
        st.session_state.pg_spots = st.session_state.pg_spots + new
        st.session_state.pg_canvas_version += 1


def _clear_drawing() -> None:
    st.session_state.pg_spots = []
    st.session_state.pg_canvas_version += 1


def data_controls() -> Target:
    """The data widgets; returns the points to train on, or why there are none."""
    state = st.session_state
    st.markdown("#### 1 · Data")
    target = st.selectbox("Target", data.TARGETS, key="pg_target", on_change=_on_target_change)
    uploaded = target == data.UPLOAD_TARGET  # an upload's points are used as they are
    n = st.select_slider(
        "Sample size", options=(500, 1000, 2000, 5000, 10000), value=2000, key="pg_n", disabled=uploaded
    )
    noise = st.slider("Noise (std of the jitter)", 0.0, 1.0, step=0.01, key="pg_noise", disabled=uploaded)
    if target in data.TOY_TARGETS:
        train, test = _toy_split(target, n, noise, 0)
        return Target(
            target,
            torch.from_numpy(train),
            torch.from_numpy(test),
            f"{target}|{n}|{noise}",
            _toy_entropy(target, noise),
            "estimated",
            data.gaussian_fit_nll(torch.from_numpy(train)),
        )
    if uploaded:
        return _upload_target()
    return _drawn_target(state, n, noise)


def _upload_target() -> Target:
    upload = st.file_uploader(
        "CSV of points, columns x,y",
        type=["csv", "txt", "tsv"],
        key="pg_upload",
        max_upload_size=50,
        help=f"One point per row, e.g. `0.5,-1.2`; an optional header line `x,y`. At most "
        f"{data.MAX_CSV_ROWS:,} rows. Points are centred and scaled to fit the canvas; a fifth is held out "
        "to measure the held-out NLL.",
    )
    if upload is None:
        return _no_points(data.UPLOAD_TARGET, "upload:none", "Upload a CSV of x,y points to train on them.")
    content = upload.getvalue()
    points, message = _parse_upload(content)
    if points is None:
        st.error(f"**{plain(upload.name)}**: {plain(message)}", icon=":material/error:")
        return _no_points(data.UPLOAD_TARGET, "upload:bad", f"Could not read {upload.name}: {message}", True)
    st.caption(f":material/check_circle: {plain(upload.name)}: {plain(message)}")
    all_points = torch.from_numpy(points)
    order = torch.randperm(len(all_points), generator=torch.Generator().manual_seed(0))
    held_out = len(all_points) // 5 if len(all_points) >= 50 else 0
    test = all_points[order[:held_out]] if held_out else all_points
    train = all_points[order[held_out:]]
    digest = hashlib.sha1(content).hexdigest()[:12]
    return Target(
        data.UPLOAD_TARGET,
        train,
        test,
        f"upload:{digest}",
        _knn_entropy(points),
        "kNN estimate from your points",
        data.gaussian_fit_nll(train),
    )


def _drawn_target(state: st.runtime.state.SessionStateProxy, n: int, noise: float) -> Target:
    spots = np.asarray(state.pg_spots, dtype=np.float64).reshape(-1, 2)
    st.caption(
        f"**{len(spots)} spot(s)** drawn on the canvas at the top. Each training point is a random spot plus "
        f"Gaussian noise (at least {data.MIN_DRAW_NOISE})."
    )
    if not len(spots):
        return _no_points(
            data.DRAWN_TARGET, "drawn:none", "Click the canvas above (or drag a box) to add points."
        )
    spot_tensor = torch.from_numpy(spots)
    train = data.drawn_points(spot_tensor, n, noise, 0)
    test = data.drawn_points(spot_tensor, max(n // 2, 500), noise, 1)
    digest = hashlib.sha1(spots.tobytes()).hexdigest()[:12]
    return Target(
        data.DRAWN_TARGET,
        train,
        test,
        f"drawn:{digest}|{n}|{noise}",
        data.drawn_entropy(spot_tensor, noise),
        "Monte Carlo estimate",
        data.gaussian_fit_nll(train),
    )


def drawing_canvas() -> None:
    """The canvas of the "Draw your own" target: clicked or box-selected spots join the drawing."""
    state = st.session_state
    spots = np.asarray(state.pg_spots, dtype=np.float64).reshape(-1, 2)
    key = f"pg_canvas_{state.pg_canvas_version}"  # a new key clears the selection after each addition
    canvas, notes = st.columns([3, 2], vertical_alignment="center")
    with notes:
        st.markdown(
            "**Draw your own target**, then press **Play**. Each training point is one of your spots plus "
            "Gaussian noise (the noise slider, at least "
            f"{data.MIN_DRAW_NOISE}).\n\n"
            "Plotly reports clicks only on existing points, so the canvas is covered with faint clickable "
            f"dots, one every {data.DRAW_SPACING} units."
        )
        brush = st.segmented_control(
            "Add points by", ("clicking", "dragging a box"), default="clicking", key="pg_brush"
        )
        st.button(
            "Clear drawing",
            icon=":material/delete:",
            on_click=_clear_drawing,
            key="pg_clear",
            disabled=not len(spots),
        )
    with canvas:
        presenter.plotly_chart(
            figures.draw_canvas_figure(spots, data.CANVAS, data.DRAW_SPACING, box=brush == "dragging a box"),
            key=key,
            on_select=lambda: _add_drawn_spots(key),
            selection_mode=("points", "box", "lasso"),
            config={"displayModeBar": False},
            theme=None,
        )


def model_controls() -> None:
    """The model and training widgets (read by ``session.widget_settings``)."""
    st.markdown("#### 2 · Model")
    st.radio(
        "Flow",
        list(model_names()),
        format_func=model_names().get,
        horizontal=True,
        key="pg_model",
        help=" ".join(f"{family.title}: {family.description}." for family in registry.families("toy")),
    )
    st.slider("Blocks K (2K couplings)", 1, 8, DEFAULTS.blocks, key="pg_blocks")
    st.selectbox(
        "Hidden sizes of each coupling's MLP",
        list(HIDDEN_CHOICES),
        index=list(HIDDEN_CHOICES.values()).index(DEFAULTS.hidden),
        key="pg_hidden",
    )
    st.selectbox(
        "Activation",
        ACTIVATION_CHOICES,
        index=ACTIVATION_CHOICES.index(DEFAULTS.activation),
        key="pg_activation",
        help="sin lets each coupling oscillate along its input, which suits curled targets such as the "
        "spiral; tanh is smooth; relu gives sharp, piecewise-straight folds.",
    )
    st.radio("Prior", ("gaussian", "logistic"), format_func=str.capitalize, horizontal=True, key="pg_prior")
    st.markdown("#### 3 · Training")
    st.select_slider(
        "Learning rate",
        options=LEARNING_RATES,
        value=DEFAULTS.lr,
        format_func=lambda v: f"{v:g}",
        key="pg_lr",
        help="Changes apply from the next step; the model keeps training.",
    )
    st.select_slider("Batch size", options=BATCH_SIZES, value=256, key="pg_batch")
