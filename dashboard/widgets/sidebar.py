"""The sidebar shared by every page (drawn once, from streamlit_app.py): what is training right now."""

from __future__ import annotations

import streamlit as st

from dashboard import access
from dashboard.services.run_manager import RunManager
from dashboard.services.state import run_manager
from dashboard.text import plain

#: Seconds between two redraws of the sidebar status while something trains.
REFRESH_S = 2.0


def _status_lines(manager: RunManager) -> None:
    active = manager.active_ids()
    if not active:
        st.caption("No run is training.")
        return
    snapshots = [s for s in (manager.snapshot(run_id) for run_id in active) if s is not None]
    for snapshot in snapshots:
        if snapshot.state == "queued":
            st.caption(f"**queued ({snapshot.queue_position})**: {plain(snapshot.run_id)}")
        else:
            st.caption(
                f"**{snapshot.state}**: {snapshot.run_id} · step {snapshot.step:,} / {snapshot.steps:,}"
            )
    st.page_link(
        "pages/train.py",
        label="Open the Train page",
        icon=":material/model_training:",
        query_params={"run": active[0]},
    )


@st.fragment(run_every=REFRESH_S)
def _live_status() -> None:
    manager = run_manager()
    _status_lines(manager)
    if not manager.active_ids():
        st.rerun(scope="app")  # nothing left to follow: stop refreshing


def training_status() -> None:
    """Runs training or queued in this dashboard, refreshed every few seconds while there are any."""
    manager = run_manager()
    with st.sidebar:
        access.sidebar_panel()
        if manager.active_ids():
            _live_status()
        else:
            _status_lines(manager)
