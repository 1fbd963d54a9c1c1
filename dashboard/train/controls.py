"""The run panel's buttons: Pause, Resume, Stop, Continue, Continue for N more steps, the downloads."""

from __future__ import annotations

import streamlit as st

from dashboard import access
from dashboard.services.run_manager import LIVE_STATES, RunManager
from dashboard.text import plain
from dashboard.train.run_view import RunView
from flows.training import runs
from flows.training.extend import extension

#: How an extension treats the learning-rate schedule (flows/training/extend.py).
EXTEND_HELP = (
    "Trains on from the last checkpoint to a larger total, exactly as a resume. A constant schedule "
    "continues as one longer run would; cosine and linear are laid again over the new total, so the rate "
    "rises from the old end's floor to the longer schedule's value."
)


def run_controls(manager: RunManager, view: RunView) -> None:
    """Pause, Resume, Stop for runs trained here; Continue for runs that ended."""
    run_id, state = view.run_id, view.state
    columns = st.columns(4)
    allowed = access.can_control()
    locked = None if allowed else access.LOCKED_HELP
    if view.managed or state in LIVE_STATES:
        actions = (  # label, icon, key prefix, manager call, whether the run's state allows it
            ("Pause", ":material/pause:", "pause", manager.pause, state == "running"),
            ("Resume", ":material/play_arrow:", "resume", manager.resume, state in ("paused", "pausing")),
            (
                "Stop",
                ":material/stop:",
                "stop",
                manager.stop,
                state in ("queued", "running", "paused", "pausing"),
            ),
        )
        for column, (label, icon, name, action, possible) in zip(columns, actions, strict=False):
            column.button(
                label,
                icon=icon,
                key=f"{name}-{run_id}",
                disabled=not view.managed or not possible or not allowed,
                help=locked,
                on_click=access.guarded(action),
                args=(run_id,),
                width="stretch",
            )
    can_continue = state in ("created", "stopped", "interrupted", "failed") and view.step < view.steps
    if view.config is not None and not can_continue and state not in LIVE_STATES:
        extend_control(manager, view)
    if not can_continue or view.config is None:
        return
    continue_clicked = columns[3].button(
        "Continue",
        icon=":material/replay:",
        key=f"continue-{run_id}",
        width="stretch",
        disabled=not allowed,
        help=locked,
    )
    if continue_clicked and allowed:
        try:
            access.check_queue_room(set(manager.active_ids()))
            manager.continue_run(run_id)
        except (OSError, ValueError) as error:
            st.error(plain(error), icon=":material/error:")
        else:
            access.started_runs().append(run_id)
            st.rerun(scope="app")


def extend_control(manager: RunManager, view: RunView) -> None:
    """ "Continue for N more steps" on a run that ended: a resume to a larger total (training/extend.py)."""
    assert view.config is not None
    if view.config.minutes:
        st.caption(
            f"This run trained for a time budget; extend it in a terminal: `python main.py --resume "
            f"{view.path} --more-minutes 5`."
        )
        return
    allowed = access.can_control()
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    more = left.number_input(
        "More steps", 1, 10**7, max(100, view.steps // 2), 100, key=f"extend-steps-{view.run_id}"
    )
    clicked = right.button(
        f"Continue for {int(more):,} more steps",
        icon=":material/fast_forward:",
        key=f"extend-{view.run_id}",
        disabled=not allowed,
        help=access.LOCKED_HELP if not allowed else EXTEND_HELP,
    )
    if clicked and allowed:
        try:
            access.check_queue_room(set(manager.active_ids()))
            manager.continue_run(view.run_id, extension(view.path, more_steps=int(more))["steps"])
        except (OSError, ValueError) as error:
            st.error(plain(error), icon=":material/error:")
        else:
            access.started_runs().append(view.run_id)
            st.rerun(scope="app")


def checkpoint_downloads(view: RunView) -> None:
    """Download buttons for the run's checkpoints (read from disk only when clicked)."""
    available = [which for which in runs.CHECKPOINTS if runs.checkpoint_path(view.path, which).is_file()]
    if not available:
        st.caption("Checkpoints appear at the first test and when the run ends.")
        return
    columns = st.columns(len(available))
    for column, which in zip(columns, available, strict=True):
        path = runs.checkpoint_path(view.path, which)
        column.download_button(
            f"{which}.pt",
            icon=":material/download:",
            data=path.read_bytes,  # a callable: the file is read only when the button is clicked
            file_name=f"{view.run_id}-{which}.pt",
            mime="application/octet-stream",
            key=f"download-{which}-{view.run_id}",
            on_click="ignore",
            width="stretch",
        )
