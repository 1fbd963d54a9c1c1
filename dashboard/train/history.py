"""The Train page's "All runs" section: the runs table, the comparison chart, the checkpoint upload."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from dashboard import access
from dashboard.services.run_manager import RunManager
from dashboard.services.state import run_infos, run_manager
from dashboard.services.uploads import import_checkpoint
from dashboard.text import plain
from dashboard.train.labels import DATASET_LABELS, model_label
from dashboard.train.run_view import load_view
from dashboard.widgets import charts, presenter
from flows.data import bits_per_dim
from flows.training import RunInfo

#: Seconds between two redraws of the runs table while a run is live.
TABLE_REFRESH_S = 3.0


def run_table_rows(manager: RunManager, infos: list[RunInfo]) -> list[dict[str, object]]:
    """One row per run folder: the manager's state for runs trained here, status.json's otherwise."""
    rows = []
    for info in infos:
        snapshot = manager.snapshot(info.run_id)
        state = snapshot.state if snapshot is not None else info.state
        if snapshot is not None and snapshot.queue_position is not None:
            state = f"queued ({snapshot.queue_position})"
        step = snapshot.step if snapshot is not None else info.step
        config = info.config
        is_image = config is not None and config.is_image
        train = None if info.loss is None else float(info.loss)
        if train is not None and is_image:
            train = float(bits_per_dim(np.float64(-train), config.dims))
        test = info.test_bits_per_dim
        rows.append(
            {
                "run": info.run_id,
                "state": state,
                "dataset": DATASET_LABELS.get(config.dataset, config.dataset) if config else "?",
                "model": model_label(config.model).split()[0] if config else "?",
                "step": f"{step:,} / {info.steps:,}" if info.steps else f"{step:,}",
                "train": None if train is None else round(train, 3),
                "test": None if test is None else round(float(test), 3),
                "unit": "bits/dim" if is_image else "nats",
                "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated)),
            }
        )
    return rows


def runs_table(manager: RunManager, infos: list[RunInfo]) -> list[str]:
    """The runs table; returns the ids of the rows selected for comparison."""
    rows = run_table_rows(manager, infos)
    event = st.dataframe(
        rows,
        key="runs_table",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
    )
    selected = event.selection.rows if event is not None else []
    return [rows[index]["run"] for index in selected if index < len(rows)]  # type: ignore[misc]


def compare_chart(manager: RunManager, run_ids: list[str]) -> None:
    """Overlaid curves of the selected runs."""
    curves = []
    for run_id in run_ids:
        view = load_view(manager, run_id)
        if view is not None and view.curves is not None:
            curves.append(view.curves)
    if not curves:
        st.caption("Tick runs in the table to overlay their curves here.")
        return
    kinds = {c.is_image for c in curves}
    metric = "bits_per_dim" if kinds == {True} else "nats"
    if len(kinds) > 1:
        st.caption("Image and 2D runs are mixed: comparing losses in nats.")
    figure = charts.curves_figure(curves, metric=metric, height=460)
    presenter.plotly_chart(figure, key="compare", width="stretch")


def upload_checkpoint(manager: RunManager) -> None:
    """Imports an uploaded checkpoint as a new run, loading it safely; explains a wrong file."""
    if not access.can_control():
        st.caption(f":material/lock: Uploading checkpoints: {access.LOCKED_HELP}")
        return
    uploaded = st.file_uploader(
        "Upload a checkpoint (.pt from a Flow Lab run)",
        key="train_upload",
        help="loaded with torch.load(weights_only=True): nothing in it is ever executed",
    )
    if uploaded is None:
        return
    done = st.session_state.setdefault("train_uploads_done", {})
    if uploaded.file_id not in done:
        try:
            done[uploaded.file_id] = (
                "ok",
                import_checkpoint(manager.runs_root, uploaded.getvalue(), uploaded.name),
            )
        except ValueError as error:
            done[uploaded.file_id] = ("error", f"{uploaded.name}: {error}")
    outcome, text = done[uploaded.file_id]
    if outcome == "ok":
        st.success(
            f"Imported as run {text}; open it on the Samples page or above.", icon=":material/check_circle:"
        )
    else:
        st.error(plain(text), icon=":material/error:")


def all_runs_section(manager: RunManager) -> None:
    """Runs table, comparison chart, and checkpoint upload."""
    infos = run_infos(manager.runs_root)
    st.subheader("All runs")
    st.caption(
        f"Every run folder in {manager.runs_root}, including runs started in a terminal with main.py. "
        "Tick rows to compare their curves."
    )
    if not infos:
        st.info("No runs yet: pick settings on the left and press Start training.", icon=":material/info:")
    else:
        selected = runs_table(manager, infos)
        compare_chart(manager, selected)
    upload_checkpoint(manager)


@st.fragment(run_every=TABLE_REFRESH_S)
def live_runs_section() -> None:
    """The runs section, refreshed every few seconds while some run is live."""
    all_runs_section(run_manager())


def any_live_run(manager: RunManager) -> bool:
    """True while this dashboard or another process trains a run in the runs folder."""
    if manager.active_ids():
        return True
    return any(info.state in ("running", "paused") for info in run_infos(manager.runs_root))
