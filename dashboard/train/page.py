"""The Train page: the new-run form on the left, the chosen run's panel on the right, all runs below.

Nothing here trains: buttons call the process-wide :class:`RunManager`; a live run's panel redraws from its
snapshots (``live.py``).
"""

from __future__ import annotations

import streamlit as st

from dashboard.services.run_manager import RunManager
from dashboard.services.state import run_infos, run_manager
from dashboard.text import plain
from dashboard.train.form import settings_column
from dashboard.train.history import all_runs_section, any_live_run, live_runs_section
from dashboard.train.live import run_panel
from dashboard.widgets.layout import settings_and_main


def chosen_run(manager: RunManager, run_ids: list[str]) -> str | None:
    """The run to show: ``?run=<id>`` in the URL (so a reload reattaches), else the first active run."""
    wanted = st.query_params.get("run")
    if wanted and wanted in run_ids:
        return wanted
    if wanted:
        st.warning(plain(f"There is no run {wanted!r} in {manager.runs_root}; showing the runs there are."))
    active = manager.active_ids()
    if active:
        st.query_params["run"] = active[0]
        return active[0]
    return None


def _select_run() -> None:
    st.query_params["run"] = st.session_state["train_view_run"]


def render() -> None:
    """The whole Train page."""
    manager = run_manager()
    st.title("Train")
    st.caption(
        "Train NICE or RealNVP live. Runs train in the background on the server: closing the tab does not "
        "stop them; reloading the page finds them again."
    )
    run_ids = [info.run_id for info in run_infos(manager.runs_root)]
    settings, panel = settings_and_main(2.4)
    with settings:
        settings_column(manager)
    with panel:
        current = chosen_run(manager, run_ids)
        if run_ids:
            st.session_state["train_view_run"] = current
            st.selectbox(
                "Show run",
                run_ids,
                key="train_view_run",
                on_change=_select_run,
                placeholder="pick a run to show",
            )
        if current is None:
            st.info(
                "No run is training. Choose settings on the left and press **Start training**; "
                "a small RealNVP on MNIST digits shows digits within a minute.",
                icon=":material/arrow_back:",
            )
        else:
            run_panel(manager, current)
    st.divider()
    if any_live_run(manager):
        live_runs_section()
    else:
        all_runs_section(manager)
