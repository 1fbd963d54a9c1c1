"""The Train page's run panel: state, controls, progress, numbers, curves and samples, redrawn every second
inside ``st.fragment(run_every=...)`` while the run is live, so a click only reruns the fragment."""

from __future__ import annotations

import streamlit as st

from dashboard.score_view import score_table
from dashboard.services.run_manager import LIVE_STATES, RunManager
from dashboard.services.state import run_manager, run_quality
from dashboard.text import plain
from dashboard.train.controls import checkpoint_downloads, run_controls
from dashboard.train.labels import DATASET_LABELS, STATE_BADGES, model_label
from dashboard.train.run_view import (
    RunView,
    data_description,
    load_view,
    progress_fraction,
    progress_text,
)
from dashboard.widgets import charts, presenter
from dashboard.widgets.live_chart import live_chart
from flows import registry

#: Seconds between two redraws of a live run.
REFRESH_S = 1.0
#: The live sample grid's sizes (a third or half of the page's width), and the control's key.
SIZES, LARGE, SIZE_KEY = ("Normal", "Large"), "Large", "train_samples_size"
#: Train-loss points averaged for the "train" tile, so it does not flicker with each batch.
TILE_WINDOW = 20


def _tiles(view: RunView) -> None:
    """Four big numbers: train loss (mean of recent steps), test loss (bits/dim for images), step, speed."""
    curves = view.curves
    is_image = view.config is not None and view.config.is_image
    unit = "bits/dim" if is_image else "nats"
    train = test = None
    if curves is not None and len(curves.losses):
        recent = curves.losses[-TILE_WINDOW:].mean()
        train = float(curves.bits_per_dim(recent) if is_image else recent)
    if curves is not None and len(curves.test_losses):
        last = curves.test_losses[-1]
        test = float(curves.bits_per_dim(last) if is_image else last)
    columns = st.columns(4)
    columns[0].metric(f"Train {unit}", "–" if train is None else f"{train:.3f}")
    columns[1].metric(f"Test {unit}", "–" if test is None else f"{test:.3f}")
    columns[2].metric("Step", f"{view.step:,}")
    rate = "–" if not view.images_per_sec else f"{view.images_per_sec:,.0f}"
    columns[3].metric("Images/s" if is_image else "Points/s", rate)


def render_run(manager: RunManager, run_id: str) -> RunView | None:
    """The panel of one run: state, controls, progress, numbers, curves, samples, checkpoints."""
    view = load_view(manager, run_id)
    if view is None:
        st.warning(plain(f"There is no run {run_id!r} in {manager.runs_root}."), icon=":material/error:")
        return None
    description = ""
    if view.config is not None:
        config = view.config
        description = (
            f"{model_label(config.model)} · {DATASET_LABELS[config.dataset]} · "
            f"{registry.get_family(config.model).summary(config)} · lr {config.lr:g} · "
            f"batch {config.batch_size}"
        )
    st.markdown(f"#### {plain(view.run_id)} {STATE_BADGES.get(view.state, plain(view.state))}")
    st.caption(description)
    if view.state == "queued" and view.queue_position is not None:
        st.info(
            f"Queued: position {view.queue_position}. It starts when a running run ends.",
            icon=":material/hourglass_top:",
        )
    data_line = data_description(view.config)
    if data_line:
        st.caption(data_line)
    if view.message:
        (st.error if view.state in ("failed", "interrupted") else st.warning)(
            view.message, icon=":material/error:"
        )
    if view.activity and view.state == "running":
        st.info(
            f"**Sample judge**: {plain(view.activity.removeprefix('judge: '))}. The first test scores the "
            "samples with a small classifier, trained once per dataset (under a minute on a CPU); the "
            "steps go on after it.",
            icon=":material/hourglass_top:",
        )
    run_controls(manager, view)
    st.progress(progress_fraction(view), text=progress_text(view))
    _tiles(view)
    large = samples_size() == LARGE
    chart_column, samples_column = st.columns([1, 1] if large else [2.2, 1], gap="medium")
    with chart_column:
        if view.curves is not None and len(view.curves.steps):
            # Redrawn in place (no remount, zoom kept) while the fragment refreshes every second.
            figure = charts.curves_figure([view.curves])
            figure.update_xaxes(automargin=True).update_yaxes(automargin=True)  # room for the tick labels
            live_chart(figure, key=f"curves-{view.run_id}")
        else:
            st.caption("The loss curves appear here after the first steps.")
    with samples_column:
        if view.samples_image is not None:
            st.image(view.samples_image, caption=view.samples_caption, width="stretch")
        else:
            st.caption(view.samples_caption)
        if not large:
            quality_section(view)
            checkpoint_downloads(view)
    if large:
        quality_section(view)
        checkpoint_downloads(view)
    return view


def samples_size() -> str:
    """The samples' size chosen above the run panel: "Large" in presenter mode unless changed."""
    if SIZE_KEY not in st.session_state:
        st.session_state[SIZE_KEY] = LARGE if presenter.is_on() else SIZES[0]
    return st.session_state[SIZE_KEY] or SIZES[0]


def samples_size_control() -> None:
    """Normal (samples beside the curves, a third of the width) or Large (half the width)."""
    samples_size()
    st.segmented_control(
        "Live samples",
        SIZES,
        key=SIZE_KEY,
        help="Large: the live sample grid takes half the page's width, for a projector.",
    )


def quality_section(view: RunView) -> None:
    """The judge's score of the samples at the last test, and the overfitting warning, from metrics.jsonl."""
    quality = run_quality(view.path)
    if quality.overfit is not None:
        st.warning(quality.overfit, icon=":material/trending_up:")
    if quality.score is not None:
        score = quality.score
        score_table(
            score,
            score.get("real"),
            caption=f"{score['count']} samples at temperature {score['temperature']:g}, step "
            f"{quality.score_step:,}.",
        )


@st.fragment(run_every=REFRESH_S)
def live_run(run_id: str) -> None:
    """The run panel, redrawn every second while the run is live; a full rerun when it ends."""
    manager = run_manager()
    view = render_run(manager, run_id)
    if view is not None and not is_live(view):
        st.rerun(scope="app")


def is_live(view: RunView) -> bool:
    """True while a run changes: queued, training or paused here, or training in another process."""
    return view.state in LIVE_STATES


def run_panel(manager: RunManager, run_id: str) -> None:
    """The run panel: live (a fragment redrawn every second) while the run changes, else drawn once."""
    samples_size_control()
    view = load_view(manager, run_id)
    if view is not None and is_live(view):
        live_run(run_id)
    else:
        render_run(manager, run_id)
