"""The Flow Playground page: pick a 2D target, train NICE or RealNVP live, look inside layer by layer.

While playing, a background thread trains (see :mod:`dashboard.playground.run`; it never calls
streamlit) and a fragment reruns every ``REFRESH_SECONDS`` to redraw the panels from a copy of the
weights. "Playing" is the page's intent in ``st.session_state.pg_playing``; each refresh reconciles
the thread with it, so a thread that stopped because the tab was hidden restarts when it is seen again.

Its parts: ``controls.py`` (the left column: data and model settings), ``session.py`` (session state,
Play/Pause/Step/Reset), ``tabs.py`` (layer by layer, the race, export); this module draws the control
bar, the status tiles and the four live panels.
"""

from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from dashboard.playground import data, figures
from dashboard.playground.controls import DEFAULTS, Target, data_controls, drawing_canvas, model_controls
from dashboard.playground.run import History, PlaygroundRun, Race, model_names, one_thread
from dashboard.playground.session import (
    init_state,
    ordinal,
    pause,
    place_in_line,
    play,
    reset,
    step_once,
    sync_run,
)
from dashboard.playground.tabs import SHOWN_POINTS, export_view, layer_view, race_view
from dashboard.services.turns import PLAYGROUND_SEATS
from dashboard.text import plain
from dashboard.widgets import presenter
from dashboard.widgets.layout import settings_and_main
from dashboard.widgets.live_chart import ViewportFit, live_chart
from flows import Flow
from flows import toy_views as views

__all__ = ["DEFAULTS", "LIVE_TABS", "render"]

#: Seconds between two chart refreshes while training.
REFRESH_SECONDS = 0.5
#: Grid points per side of the live density heatmap. Each refresh pushes all of them through the flow on
#: the page's thread, which shares the interpreter with training: 48 (2,304 points; drawn with plotly's
#: "fast" smoothing it looks as 64 did) costs the 8-block default 15 ms a refresh instead of 27 ms.
DENSITY_RESOLUTION = 48
#: Seconds between two held-out NLL evaluations while training: each took as long as the density panel.
EVAL_SECONDS = 2.0
#: Points per line of the live warped grid (15 lines each way).
GRID_POINTS_PER_LINE = 60
NO_DIMMING = "opacity: 1 !important; transition: none !important;"
#: The four live panels, two rows of two, sized to end at the bottom of the window (a projector's 720 px).
PANEL_FIT = ViewportFit(anchor=".st-key-pg_panels", rows=2, spacing=24)
PANEL_MIN_HEIGHT = 170
#: Presenter mode's text is 25% larger, so its panels may be a little lower to fit under it at 720 px.
PRESENTER_PANEL_MIN_HEIGHT = 150
#: The page's own styles. A compact header and status row, so that at 1280x720 the controls and the four
#: panels fit one screen with no tile cut short; Streamlit's header "Stop" hidden, because it stops only
#: the current redraw (the next refresh starts again) while Pause stops training.
PAGE_STYLE = f"""<style>
.stMainBlockContainer {{ padding: 3.5rem 1.5rem 1rem 1.5rem; }}
[data-testid="stStatusWidget"] {{ display: none !important; }}
.st-key-pg_live [data-stale='true'] {{{NO_DIMMING}}}
.st-key-pg_status [data-testid="stMetricValue"] {{ font-size: 1.6rem; }}
.st-key-pg_status [data-testid="stMetricLabel"] p {{ font-size: 0.85rem; }}
.st-key-pg_status [data-testid="stMetric"] {{ min-width: max-content; }}
</style>"""
#: Presenter mode's additions: the title moves up under a see-through header (it holds only the menu at
#: the right), so the larger text still leaves the four panels room on one 1280x720 screen.
PRESENTER_PAGE_STYLE = """<style>
.stMainBlockContainer { padding-top: 1rem; }
[data-testid="stHeader"] { background-color: transparent !important; pointer-events: none; }
[data-testid="stHeader"] * { pointer-events: auto; }
</style>"""
#: The status tiles presenter mode leaves out: both figures are drawn as lines in the loss panel.
REFERENCE_TILES = ("Gaussian fit", "Target entropy")
LIVE_TABS = (
    ":material/monitoring: Live panels",
    ":material/layers: Layer by layer",
    ":material/flag: NICE vs RealNVP",
    ":material/download: Export",
)


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
            on_click=play,
            disabled=no_run or state.pg_playing,
            width=120,
        )
        st.button(
            "Pause",
            icon=":material/pause:",
            key="pg_pause",
            on_click=pause,
            disabled=not (state.pg_playing or state.pg_racing),
            width=120,
        )
        st.button(
            "Step",
            icon=":material/skip_next:",
            key="pg_step",
            on_click=step_once,
            disabled=no_run,
            width=120,
            help="One optimizer step on one random batch.",
        )
        st.button(
            "Reset",
            icon=":material/restart_alt:",
            key="pg_reset",
            on_click=reset,
            disabled=run is None,
            width=120,
            help="New random weights, step 0.",
        )


def _run_summary(run: PlaygroundRun) -> None:
    """One line naming the model and settings the run trains with."""
    settings = run.settings
    hidden = ", ".join(map(str, settings.hidden))
    st.caption(
        f"**{model_names()[settings.model]}** · {settings.blocks} blocks "
        f"({2 * settings.blocks} couplings) · "
        f"hidden [{hidden}] · {settings.activation} · {settings.prior} prior · lr {settings.lr:g} · "
        f"batch {min(settings.batch_size, len(run.train_points))}"
    )


def _status(
    run: PlaygroundRun, history: History, target: Target, steps_per_second: float | None, place: int
) -> None:
    """A row of large numbers (readable from the back of a room), the place in line, any warning."""
    state = st.session_state
    dash = "–"
    # Tiles as wide as their text, wrapping onto a second row rather than cutting a number short.
    row = st.container(key="pg_status", horizontal=True, vertical_alignment="center", gap="small")
    if place:
        row.markdown(":blue-badge[:material/hourglass_top: waiting]")
    elif state.pg_racing:
        row.markdown(":orange-badge[:material/flag: racing]")
    elif state.pg_playing:
        row.markdown(":green-badge[:material/play_circle: training]")
    else:
        row.markdown(":gray-badge[:material/pause_circle: paused]")
    row.metric("Step", f"{len(history.steps):,}", width="content")
    recent = history.losses[-max(10, len(history.losses) // 30) :]
    loss = sum(recent) / len(recent) if recent else None
    row.metric(
        "Loss (nats)",
        dash if loss is None else f"{loss:.3f}",
        help="Training loss, averaged over the last thirtieth of the steps.",
        width="content",
    )
    nll = history.eval_nll[-1] if history.eval_nll else None
    row.metric(
        "Held-out NLL",
        dash if nll is None else f"{nll:.3f}",
        help="-mean log p(x) over points the model never trains on; compare it with the Gaussian fit.",
        width="content",
    )
    if not presenter.is_on():  # a projector's row holds four tiles; the loss panel draws these two
        gaussian = target.gaussian_nll
        row.metric(
            REFERENCE_TILES[0],
            dash if gaussian is None else f"{gaussian:.3f}",
            help="The average NLL of the best single Gaussian: what a flow must beat.",
            width="content",
        )
        row.metric(
            REFERENCE_TILES[1],
            dash if target.entropy is None else f"≈ {target.entropy:.3f}",
            help=f"The lowest expected NLL any model can reach ({target.entropy_note}).",
            width="content",
        )
    speed = dash
    if steps_per_second:
        per_minute = steps_per_second * 60
        speed = f"{per_minute / 1000:.1f}k" if per_minute >= 1000 else f"{per_minute:.0f}"
    row.metric("Steps/min", speed, help="Optimizer steps per minute of wall time.", width="content")
    if place:
        seats = PLAYGROUND_SEATS
        with st.container(key="pg_waiting"):
            st.info(
                f"**Waiting to play: {ordinal(place)} in line.** {seats.seats} playground"
                f"{'s' if seats.seats > 1 else ''} train at once on this server, so that each keeps "
                f"refreshing; yours starts by itself when one pauses, or after at most "
                f"{seats.turn_s / 60:g} minutes of someone else's turn.",
                icon=":material/hourglass_top:",
            )
    problem = run.diverged or run.error
    if problem:
        st.error(plain(problem), icon=":material/warning:")
    elif run.notice:
        st.warning(plain(run.notice), icon=":material/warning:")


def _panels(run: PlaygroundRun, model: Flow, history: History, target: Target) -> dict[str, go.Figure]:
    """The four live figures, built again only when the run has moved since the last refresh.

    A paused or waiting session redraws the same figures (the browser then skips them: same spec).
    """
    state = st.session_state
    key = (id(run), len(history.steps), len(history.eval_steps), target.key)
    cached = state.get("pg_panel_cache")
    if cached is not None and cached[0] == key:
        return cached[1]
    extent = data.CANVAS
    shown = run.train_points[:SHOWN_POINTS].numpy()  # the points are in random order: a fair subset
    with one_thread():
        samples = run.samples(model, SHOWN_POINTS).numpy()
        log_density = views.density_grid(model, extent, DENSITY_RESOLUTION)
        grid = views.warped_grid(model, points_per_line=GRID_POINTS_PER_LINE).numpy()
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
    state.pg_panel_cache = (key, panels)
    return panels


def _live_panels(run: PlaygroundRun, model: Flow, history: History, target: Target) -> None:
    # Build every figure first, then emit them back to back: the browser never shows a half-drawn grid.
    panels = _panels(run, model, history, target)
    min_height = PRESENTER_PANEL_MIN_HEIGHT if presenter.is_on() else PANEL_MIN_HEIGHT
    # Two rows of two, laid out as two columns of two: one columns block for the four panels instead of one
    # per row (under heavy load Streamlit mounted the second row's charts afresh in the first refreshes).
    with st.container(key="pg_panels"):
        for column, names in zip(st.columns(2), (("samples", "grid"), ("density", "loss")), strict=True):
            with column:
                for name in names:
                    with st.container(key=f"pg_panel_{name}"):
                        live_chart(panels[name], key=f"pg_fig_{name}", fit=PANEL_FIT, min_height=min_height)
    st.caption(
        "**Left top**: orange = the data, blue = x = F(z) for a fixed set of z from the prior. "
        "**Right top**: the model's exact density p(x) = p_z(F⁻¹(x))·|det ∂F⁻¹/∂x|. "
        "**Left bottom**: a square grid in z-space, bent by F. "
        "**Right bottom**: the loss can approach, but in expectation never beat, the target's entropy; "
        "the grey line is the best a single Gaussian can do."
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
    place = place_in_line()  # 0: this session may train now; else it waits, its threads stopped
    if state.pg_playing and not place:
        run.touch()
        run.play()  # no-op while running; restarts a thread that stopped because the tab was hidden
    race: Race | None = state.pg_race
    if state.pg_racing and race is not None:
        if race.finished or race.error:
            state.pg_racing = False
            st.rerun()  # the whole page: the refresh timer stops
        if not place:
            race.touch()
            race.start()  # no-op while running, as for the run above
    model, _, step = run.snapshot()
    evaluated = run.history.eval_steps[-1] if run.history.eval_steps else None
    now = time.monotonic()
    due = not (state.pg_playing or state.pg_racing) or now - state.get("pg_eval_time", 0.0) >= EVAL_SECONDS
    if evaluated != step and due:
        with one_thread():
            run.evaluate(model, step)
        state.pg_eval_time = now
    with run.lock:
        history = run.history.copy()
    if state.pg_playing and (run.diverged or run.error):
        state.pg_playing = False
        st.rerun()
    counted = race.steps_done if state.pg_racing and race is not None else step
    rate = _throughput(counted)
    _status(run, history, target, None if place else rate, place)
    tabs = st.tabs(LIVE_TABS, key="pg_tab", on_change="rerun", default=LIVE_TABS[0])
    views_by_tab = (
        lambda: _live_panels(run, model, history, target),
        lambda: layer_view(run, model),
        lambda: race_view(state, run, target),
        lambda: export_view(run, target),
    )
    for tab, view in zip(tabs, views_by_tab, strict=True):
        if tab.open is not False:
            with tab:
                view()


def render() -> None:
    """Draws the whole page."""
    state = init_state()
    st.html(PAGE_STYLE + (PRESENTER_PAGE_STYLE if presenter.is_on() else ""))
    with st.container(horizontal=True, wrap=False, vertical_alignment="center", gap="medium"):
        st.markdown("### :material/cyclone: Flow Playground", width="content")
        if not presenter.is_on():  # on a projector the teacher says it; the header's menu would cover it
            st.caption(
                "Watch a normalizing flow bend a Gaussian into your data. Pick a target, press **Play**, and "
                "open **Layer by layer** to see each coupling at work."
            )
    settings_column, main_column = settings_and_main(3.2)
    with settings_column:
        target = data_controls()
        model_controls()
    run = sync_run(target)
    with main_column:
        if target.name == data.DRAWN_TARGET:
            drawing_canvas()
        _control_bar(run)
        live = st.fragment(
            _live_area, run_every=REFRESH_SECONDS if (state.pg_playing or state.pg_racing) else None
        )
        with st.container(key="pg_live"):
            live(target)
        if run is not None:
            _run_summary(run)
