"""The Flow Playground page: pick a 2D target, train NICE or RealNVP live, look inside layer by layer.

While playing, a background thread trains (see :mod:`dashboard.playground.run`; it never calls
streamlit) and a fragment reruns every ``REFRESH_SECONDS`` to redraw the panels from a copy of the
weights. "Playing" is the page's intent in ``st.session_state.pg_playing``; each refresh reconciles
the thread with it, so a thread that stopped because the tab was hidden restarts when it is seen again.
State lives in ``st.session_state`` under keys starting with "pg_".
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from dashboard.playground import data, figures
from dashboard.playground.export import ExportPanels, panels_png
from dashboard.playground.run import FlowSettings, History, PlaygroundRun, Race, model_names, one_thread
from dashboard.text import plain
from dashboard.widgets.layout import settings_and_main
from flows import Flow, registry
from flows import toy_views as views
from flows.nn import ACTIVATIONS

#: Seconds between two chart refreshes while training.
REFRESH_SECONDS = 0.5
#: Grid points per side of the live density heatmap. Each refresh pushes all of them through the flow on
#: the page's thread, which shares the interpreter with training: 64 (4,096 points) instead of 90 let
#: the 6-block default train 2,000 instead of 1,300 steps a minute in Chromium on 2 cores.
DENSITY_RESOLUTION = 64
#: Points drawn per scatter panel: enough to see the shape, few enough for a busy browser to redraw.
SHOWN_POINTS = 800
NO_DIMMING = "opacity: 1 !important; transition: none !important;"
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
RACE_BUDGETS = (250, 500, 1000, 2000, 4000)
ACTIVATION_CHOICES = tuple(
    name for name in ("sin", "tanh", "relu", "elu", "softplus", "leaky_relu") if name in ACTIVATIONS
)
LIVE_TABS = (
    ":material/monitoring: Live panels",
    ":material/layers: Layer by layer",
    ":material/flag: NICE vs RealNVP",
    ":material/download: Export",
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


# --- cached derived data ------------------------------------------------------------------------------


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


# --- session state ------------------------------------------------------------------------------------


def _state() -> st.runtime.state.SessionStateProxy:
    defaults = {
        "pg_playing": False,
        "pg_racing": False,
        "pg_run": None,
        "pg_run_key": None,
        "pg_race": None,
        "pg_spots": [],
        "pg_canvas_version": 0,
        "pg_target": "Two moons",
        "pg_noise": data.default_noise("Two moons"),
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    return st.session_state


def _on_target_change() -> None:
    st.session_state.pg_noise = data.default_noise(st.session_state.pg_target)


def _settings() -> FlowSettings:
    state = st.session_state
    return FlowSettings(
        model=state.pg_model,
        blocks=int(state.pg_blocks),
        hidden=HIDDEN_CHOICES[state.pg_hidden],
        activation=state.pg_activation,
        prior=state.pg_prior,
        lr=float(state.pg_lr),
        batch_size=int(state.pg_batch),
    )


def _new_run(target: Target) -> PlaygroundRun | None:
    if target.train is None:
        return None
    with one_thread():
        run = PlaygroundRun(_settings(), target.train, target.test)
        run.evaluate()
    return run


def _stop_background() -> None:
    """Stops the run's and the race's threads (before they are replaced or paused)."""
    state = st.session_state
    if state.get("pg_run") is not None:
        state.pg_run.pause()
    if state.get("pg_race") is not None:
        state.pg_race.stop()


def _sync_run(target: Target) -> PlaygroundRun | None:
    """The current run, rebuilt when the data or the architecture changed; the learning rate is live."""
    state = st.session_state
    settings = _settings()
    key = (
        target.key,
        settings.model,
        settings.blocks,
        settings.hidden,
        settings.activation,
        settings.prior,
        settings.batch_size,
    )
    if state.pg_run_key != key:
        _stop_background()
        state.pg_run = _new_run(target)
        state.pg_run_key = key
        state.pg_race = None
        state.pg_racing = False
    run: PlaygroundRun | None = state.pg_run
    if run is not None and run.settings.lr != settings.lr:
        run.set_lr(settings.lr)
    if run is None:
        state.pg_playing = False
    return run


def _play() -> None:
    state = st.session_state
    if state.pg_race is not None:
        state.pg_race.stop()
    state.pg_racing = False
    state.pg_playing = True  # the live fragment starts the thread


def _pause() -> None:
    st.session_state.pg_playing = False
    st.session_state.pg_racing = False
    _stop_background()


def _step() -> None:
    _pause()
    run: PlaygroundRun | None = st.session_state.pg_run
    if run is not None and not run.diverged:
        with one_thread():
            run.step()
            run.evaluate()


def _reset() -> None:
    _pause()
    st.session_state.pg_run_key = None  # rebuilt with fresh weights on this rerun


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


# --- the left column: data, model, training settings --------------------------------------------------


def _data_controls() -> Target:
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


def _drawing_canvas() -> None:
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
        st.plotly_chart(
            figures.draw_canvas_figure(spots, data.CANVAS, data.DRAW_SPACING, box=brush == "dragging a box"),
            key=key,
            on_select=lambda: _add_drawn_spots(key),
            selection_mode=("points", "box", "lasso"),
            config={"displayModeBar": False},
            theme=None,
        )


def _model_controls() -> None:
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


# --- the right column: controls bar, live panels, layers, race, export -----------------------------------


def _control_bar(run: PlaygroundRun | None) -> None:
    state = st.session_state
    no_run = run is None or bool(run.diverged)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.button(
            "Play",
            icon=":material/play_arrow:",
            type="primary",
            key="pg_play",
            on_click=_play,
            disabled=no_run or state.pg_playing,
            width=120,
        )
        st.button(
            "Pause",
            icon=":material/pause:",
            key="pg_pause",
            on_click=_pause,
            disabled=not (state.pg_playing or state.pg_racing),
            width=120,
        )
        st.button(
            "Step",
            icon=":material/skip_next:",
            key="pg_step",
            on_click=_step,
            disabled=no_run,
            width=120,
            help="One optimizer step on one random batch.",
        )
        st.button(
            "Reset",
            icon=":material/restart_alt:",
            key="pg_reset",
            on_click=_reset,
            disabled=run is None,
            width=120,
            help="New random weights, step 0.",
        )
    if run is not None:
        settings = run.settings
        hidden = ", ".join(map(str, settings.hidden))
        st.caption(
            f"**{model_names()[settings.model]}** · {settings.blocks} blocks "
            f"({2 * settings.blocks} couplings) · "
            f"hidden [{hidden}] · {settings.activation} · {settings.prior} prior · lr {settings.lr:g} · "
            f"batch {min(settings.batch_size, len(run.train_points))}"
        )


def _status(run: PlaygroundRun, history: History, target: Target, steps_per_second: float | None) -> None:
    """A row of large numbers (readable from the back of a room) and any warning."""
    state = st.session_state
    dash = "–"
    with st.container(key="pg_status"):
        columns = st.columns([1.2, 1, 1.1, 1.5, 1.1, 1.3, 1.1], vertical_alignment="center")
        if state.pg_racing:
            columns[0].markdown(":orange-badge[:material/flag: racing]")
        elif state.pg_playing:
            columns[0].markdown(":green-badge[:material/play_circle: training]")
        else:
            columns[0].markdown(":gray-badge[:material/pause_circle: paused]")
        columns[1].metric("Step", f"{len(history.steps):,}")
        recent = history.losses[-max(10, len(history.losses) // 30) :]
        loss = sum(recent) / len(recent) if recent else None
        columns[2].metric(
            "Loss (nats)",
            dash if loss is None else f"{loss:.3f}",
            help="Training loss, averaged over the last thirtieth of the steps.",
        )
        nll = history.eval_nll[-1] if history.eval_nll else None
        delta = None
        if nll is not None and target.gaussian_nll is not None:
            delta = f"{nll - target.gaussian_nll:+.2f} vs Gaussian"
        columns[3].metric(
            "Held-out NLL",
            dash if nll is None else f"{nll:.3f}",
            delta=delta,
            delta_color="inverse",
            help="-mean log p(x) over points the model never trains on.",
        )
        gaussian = target.gaussian_nll
        columns[4].metric(
            "Gaussian fit",
            dash if gaussian is None else f"{gaussian:.3f}",
            help="The average NLL of the best single Gaussian: what a flow must beat.",
        )
        columns[5].metric(
            "Target entropy",
            dash if target.entropy is None else f"≈ {target.entropy:.3f}",
            help=f"The lowest expected NLL any model can reach ({target.entropy_note}).",
        )
        speed = dash
        if steps_per_second:
            per_minute = steps_per_second * 60
            speed = f"{per_minute / 1000:.1f}k" if per_minute >= 1000 else f"{per_minute:.0f}"
        columns[6].metric("Steps/min", speed, help="Optimizer steps per minute of wall time.")
    problem = run.diverged or run.error
    if problem:
        st.error(plain(problem), icon=":material/warning:")
    elif run.notice:
        st.warning(plain(run.notice), icon=":material/warning:")


def _live_panels(run: PlaygroundRun, model: Flow, history: History, target: Target) -> None:
    extent = data.CANVAS
    shown = run.train_points[:SHOWN_POINTS].numpy()  # the points are in random order: a fair subset
    with one_thread():
        samples = run.samples(model)[:SHOWN_POINTS].numpy()
        log_density = views.density_grid(model, extent, DENSITY_RESOLUTION)
        grid = views.warped_grid(model).numpy()
    # Build every figure first, then emit them back to back: the browser never shows a half-drawn grid.
    panels = {
        "samples": figures.samples_figure(shown, samples, extent),
        "density": figures.density_figure(log_density, shown, extent),
        "grid": figures.warped_grid_figure(grid, shown, extent),
        "loss": figures.loss_figure(
            history.steps,
            history.losses,
            history.eval_steps,
            history.eval_nll,
            target.gaussian_nll,
            target.entropy,
            target.entropy_note,
        ),
    }
    for row in (("samples", "density"), ("grid", "loss")):
        for column, name in zip(st.columns(2), row, strict=True):
            with column, st.container(key=f"pg_panel_{name}"):
                st.plotly_chart(panels[name], theme=None, key=f"pg_fig_{name}")
    st.caption(
        "**Left top**: orange = the data, blue = x = F(z) for a fixed set of z from the prior. "
        "**Right top**: the model's exact density p(x) = p_z(F⁻¹(x))·|det ∂F⁻¹/∂x|. "
        "**Left bottom**: a square grid in z-space, bent by F. "
        "**Right bottom**: the loss can approach, but in expectation never beat, the target's entropy; "
        "the grey line is the best a single Gaussian can do."
    )


def _move_layer(offset: int, last: int) -> None:
    state = st.session_state
    state.pg_layer = min(max(state.get("pg_layer", last) + offset, 0), last)


def _layer_view(run: PlaygroundRun, model: Flow) -> None:
    labels = views.layer_labels(model)
    extent = views.prior_extent(model)
    st.markdown(
        "Slide through the flow one layer at a time. Each dot is a draw from the prior, coloured by "
        "**where it started** (hue = direction, paleness = near the centre), so you can follow it. Cells of "
        "the z-grid are tinted by how much their **area** has changed so far: white = kept, red = stretched, "
        "blue = squeezed."
    )
    last = len(labels) - 1
    if st.session_state.get("pg_layer") not in range(last + 1):  # the model changed under the slider
        st.session_state.pg_layer = last
    controls = st.columns([1, 1, 4, 1.2, 1.2], vertical_alignment="bottom")
    controls[0].button(
        "Back",
        icon=":material/chevron_left:",
        key="pg_layer_back",
        help="Show the previous layer",
        width="stretch",
        on_click=_move_layer,
        args=(-1, last),
        disabled=st.session_state.pg_layer == 0,
    )
    controls[1].button(
        "Next",
        icon=":material/chevron_right:",
        icon_position="right",
        key="pg_layer_next",
        help="Show the next layer",
        width="stretch",
        on_click=_move_layer,
        args=(1, last),
        disabled=st.session_state.pg_layer == last,
    )
    layer = controls[2].select_slider(
        "Layer (0 = the prior's z, last = the data's x)",
        options=list(range(last + 1)),
        format_func=lambda index: labels[index],
        key="pg_layer",
    )
    chosen_x = controls[3].slider("★ z₁", -round(extent, 1), round(extent, 1), 1.0, 0.1, key="pg_star_x")
    chosen_y = controls[4].slider("★ z₂", -round(extent, 1), round(extent, 1), 0.5, 0.1, key="pg_star_y")
    with one_thread():
        frames = views.layer_trace(model, run.latent[:SHOWN_POINTS], torch.tensor([chosen_x, chosen_y]))
    colours = views.start_colours(run.latent[:SHOWN_POINTS])
    frame = frames[layer]
    log_dets = [f.chosen_log_det for f in frames[1:]]
    layer_figure = figures.layer_figure(frame, colours, data.CANVAS)
    bars = figures.log_det_figure(labels[1:], log_dets, layer)
    left, right = st.columns([5, 3])
    with left, st.container(key="pg_panel_layer"):
        st.plotly_chart(layer_figure, theme=None, key="pg_fig_layer")
    with right:
        st.plotly_chart(bars, theme=None, key="pg_fig_logdet")
    total = sum(log_dets[:layer])
    couplings = [f for f in frames[1:] if "block" in f.label]
    coupling_area = max((float(np.abs(f.cell_log_area).max()) for f in couplings[:layer]), default=0.0)
    family = registry.get_family(run.settings.model)
    if family.volume_preserving:
        scaling = frames[-1].chosen_log_det
        st.info(
            f"**{family.title} keeps areas.** Every additive coupling has log|det| = 0 at every point, so "
            f"after the couplings all cells are still white (largest |log area change| so far: "
            f"{coupling_area:.1e}). "
            f"Only the final scaling changes volume, by the same factor everywhere: Σs = {scaling:+.3f}.",
            icon=":material/straighten:",
        )
    else:
        st.info(
            f"**RealNVP scales.** Each affine coupling multiplies the changed half by exp(s(·)), so cells "
            f"stretch and squeeze. At ★ the layers so far change area by exp({total:+.3f}) = "
            f"×{np.exp(total):.3g}; the density there is the prior's divided by that factor.",
            icon=":material/open_in_full:",
        )
    if layer:
        shown = model.layers[layer - 1]
        method = getattr(type(shown), "_map", None) or type(shown).forward
        with st.expander(f"The code layer {layer} runs ({type(shown).__name__}, from flows/)"):
            st.code(textwrap.dedent(inspect.getsource(method)), language="python")


def _start_race(run: PlaygroundRun, budget: int) -> None:
    state = st.session_state
    _pause()
    state.pg_race = Race(run.settings, run.train_points, run.test_points, budget)
    state.pg_race.start()
    state.pg_racing = True


def _race_view(state: st.runtime.state.SessionStateProxy, run: PlaygroundRun, target: Target) -> None:
    racers = " and ".join(f"**{title}**" for title in model_names().values())
    st.markdown(
        f"Train {racers} on the same points with the same blocks, hidden sizes, activation, "
        "prior, seed, learning rate and number of steps, then compare their held-out NLL (lower is better)."
    )
    columns = st.columns([2, 1, 3], vertical_alignment="bottom")
    budget = columns[0].select_slider("Step budget", options=RACE_BUDGETS, value=500, key="pg_race_budget")
    if columns[1].button(
        "Race", icon=":material/flag:", type="primary", key="pg_race_start", disabled=state.pg_racing
    ):
        _start_race(run, budget)
        st.rerun()  # the whole page, so the fragment refreshes on its own while racing
    race: Race | None = state.pg_race
    if race is None:
        columns[2].caption("Press Race to start; it pauses the main training.")
        return
    columns[2].progress(
        min(race.steps_done / race.budget, 1.0), text=f"{race.steps_done:,} / {race.budget:,} steps each"
    )
    panels = st.columns(len(race.runs))
    histories = {}
    for column, (name, racer) in zip(panels, race.runs.items(), strict=True):
        model, history, _ = racer.snapshot()
        histories[model_names()[name]] = (history.steps, history.losses)
        with one_thread():
            log_density = views.density_grid(model, data.CANVAS, 70)
        nll = race.final_nll.get(name)
        title = model_names()[name]
        heading = f"{title}: held-out NLL {nll:.3f} nats" if nll is not None else f"{title}: training…"
        figure = figures.density_figure(log_density, racer.train_points.numpy(), data.CANVAS, heading)
        column.plotly_chart(figure, theme=None, key=f"pg_fig_race_{name}")
    st.plotly_chart(figures.race_figure(histories, target.entropy), theme=None, key="pg_fig_race_loss")
    if race.error:
        st.error(plain(race.error), icon=":material/warning:")
    if race.finished:
        names = model_names()
        scores = ", ".join(f"{names[name]} {nll:.3f} nats" for name, nll in race.final_nll.items())
        ranked = sorted(race.final_nll, key=race.final_nll.get)
        lead = race.final_nll[ranked[1]] - race.final_nll[ranked[0]] if len(ranked) > 1 else 0.0
        with st.container(key="pg_race_result"):
            st.success(
                f"Held-out NLL after {race.budget:,} steps each: {scores}; "
                f"**{names[ranked[0]]}** is ahead by {lead:.3f} nats.",
                icon=":material/emoji_events:",
            )


def _export_view(run: PlaygroundRun, target: Target) -> None:
    settings = run.settings

    def png() -> bytes:  # runs when the button is clicked, maybe outside the script thread
        model = run.copy_model()
        with run.lock:
            history = run.history.copy()
        with one_thread():
            panels = ExportPanels(
                extent=data.CANVAS,
                data=run.train_points.numpy(),
                samples=run.samples(model).numpy(),
                log_density=views.density_grid(model, data.CANVAS, 120),
                grid=views.warped_grid(model).numpy(),
                steps=history.steps,
                losses=history.losses,
                gaussian_nll=target.gaussian_nll,
                entropy=target.entropy,
                caption=(
                    f"Flow Lab playground · {target.name} · {model_names()[settings.model]}, "
                    f"{settings.blocks} blocks, hidden {list(settings.hidden)} · step {len(history.steps):,}"
                ),
            )
        return panels_png(panels)

    st.markdown(
        "Download the four live panels as one PNG (drawn on the server, no browser needed), and "
        "every step's loss as CSV."
    )
    columns = st.columns(2)
    columns[0].download_button(
        "Download panels (PNG)",
        data=png,
        file_name="flow-playground.png",
        mime="image/png",
        icon=":material/image:",
        key="pg_export_png",
        on_click="ignore",
    )
    columns[1].download_button(
        "Download metrics (CSV)",
        data=run.metrics_csv,
        file_name="flow-playground.csv",
        mime="text/csv",
        icon=":material/table:",
        key="pg_export_csv",
        on_click="ignore",
    )


def _throughput(steps: int) -> float | None:
    """Steps per second of wall time since the previous refresh (None when not training)."""
    state = st.session_state
    now = time.monotonic()
    previous = state.get("pg_rate_mark")
    state.pg_rate_mark = (now, steps)
    if previous is None or not (state.pg_playing or state.pg_racing) or now <= previous[0]:
        return None
    rate = (steps - previous[1]) / (now - previous[0])
    return rate if rate > 0 else None


def _live_area(target: Target) -> None:
    """Everything that changes while training; also keeps the background thread in line with Play/Pause."""
    state = st.session_state
    run: PlaygroundRun | None = state.pg_run
    if run is None:
        (st.error if target.problem_is_error else st.info)(plain(target.problem or "No points yet."))
        return
    if state.pg_playing:
        run.touch()
        run.play()  # no-op while running; restarts a thread that stopped because the tab was hidden
    race: Race | None = state.pg_race
    if state.pg_racing and race is not None:
        if race.finished or race.error:
            state.pg_racing = False
            st.rerun()  # the whole page: the refresh timer stops
        race.touch()
        race.start()  # no-op while running, as for the run above
    model, _, step = run.snapshot()
    with one_thread():
        run.evaluate(model, step)
    with run.lock:
        history = run.history.copy()
    if state.pg_playing and (run.diverged or run.error):
        state.pg_playing = False
        st.rerun()
    counted = race.steps_done if state.pg_racing and race is not None else step
    _status(run, history, target, _throughput(counted))
    tabs = st.tabs(LIVE_TABS, key="pg_tab", on_change="rerun", default=LIVE_TABS[0])
    views_by_tab = (
        lambda: _live_panels(run, model, history, target),
        lambda: _layer_view(run, model),
        lambda: _race_view(state, run, target),
        lambda: _export_view(run, target),
    )
    for tab, view in zip(tabs, views_by_tab, strict=True):
        if tab.open is not False:
            with tab:
                view()


def render() -> None:
    """Draws the whole page."""
    state = _state()
    st.title(":material/cyclone: Flow Playground")
    st.markdown(
        "##### Watch a normalizing flow bend a Gaussian into your data. Pick a target, press **Play**, and "
        "open **Layer by layer** to see each coupling at work."
    )
    settings_column, main_column = settings_and_main(3.2)
    with settings_column:
        target = _data_controls()
        _model_controls()
    run = _sync_run(target)
    with main_column:
        if target.name == data.DRAWN_TARGET:
            _drawing_canvas()
        _control_bar(run)
        live = st.fragment(
            _live_area, run_every=REFRESH_SECONDS if (state.pg_playing or state.pg_racing) else None
        )
        with st.container(key="pg_live"):
            live(target)
    # Streamlit dims elements while their fragment reruns; at two refreshes a second that reads as flicker.
    st.html(f"<style>.st-key-pg_live [data-stale='true'] {{{NO_DIMMING}}}</style>")
