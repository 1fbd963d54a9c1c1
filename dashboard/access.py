"""Classroom mode: with a teacher's token set, only sessions that entered it may change anything.

Set ``FLOWLAB_ADMIN_TOKEN`` (or ``admin_token`` in ``.streamlit/secrets.toml``) before starting the
server. Then every visitor still watches the same runs live, but only a session that typed the token in
the sidebar may start, pause, resume, stop or continue runs, change how many train at once, upload
checkpoints, download MNIST or choose its mirror. Without a token the dashboard stays single-user: every
session may do everything.

Independently of the mode, one session may have at most ``FLOWLAB_MAX_QUEUED_PER_SESSION`` runs (default
4) waiting or training at once, so one visitor cannot fill the queue.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

import streamlit as st

TOKEN_ENV = "FLOWLAB_ADMIN_TOKEN"
TOKEN_SECRET = "admin_token"
MAX_QUEUED_ENV = "FLOWLAB_MAX_QUEUED_PER_SESSION"
DEFAULT_MAX_QUEUED = 4
#: Session-state keys: whether this session entered the token, and the runs it started.
TEACHER_KEY = "access_teacher"
STARTED_KEY = "access_started_runs"
LOCKED_HELP = "Classroom mode: only the teacher can do this (enter the token in the sidebar)."


def admin_token() -> str | None:
    """The configured token (environment first, then Streamlit secrets), or None: single-user mode."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    try:
        secret = st.secrets.get(TOKEN_SECRET)
    except Exception:  # no secrets.toml at all: Streamlit raises rather than returning nothing
        secret = None
    return (str(secret).strip() or None) if secret else None


def classroom_mode() -> bool:
    return admin_token() is not None


def can_control() -> bool:
    """True where this session may change runs, uploads, downloads and mirrors."""
    return not classroom_mode() or bool(st.session_state.get(TEACHER_KEY))


def sign_in(attempt: str) -> bool:
    """Marks this session as the teacher's when ``attempt`` is the token (compared in constant time)."""
    token = admin_token()
    ok = token is not None and hmac.compare_digest(attempt.strip().encode(), token.encode())
    st.session_state[TEACHER_KEY] = ok
    return ok


def sign_out() -> None:
    st.session_state[TEACHER_KEY] = False


def max_queued_per_session() -> int:
    """``$FLOWLAB_MAX_QUEUED_PER_SESSION``, else 4; ValueError unless a positive integer."""
    text = os.environ.get(MAX_QUEUED_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_QUEUED
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_QUEUED_ENV} must be a positive integer, got {text!r}")
    return int(text)


def started_runs() -> list[str]:
    """Ids of the runs this session started or continued (oldest first)."""
    return st.session_state.setdefault(STARTED_KEY, [])


def check_queue_room(live_ids: set[str]) -> None:
    """ValueError when this session already has the most runs allowed waiting or training."""
    limit = max_queued_per_session()
    mine = [run_id for run_id in started_runs() if run_id in live_ids]
    if len(mine) >= limit:
        raise ValueError(
            f"this session already has {len(mine)} runs queued or training (at most {limit}, "
            f"{MAX_QUEUED_ENV}); stop one or wait for it to finish"
        )


def sidebar_panel() -> None:
    """In classroom mode: the token field, or who is signed in; nothing in single-user mode."""
    if not classroom_mode():
        return
    if st.session_state.get(TEACHER_KEY):
        st.caption(":material/school: Teacher mode: you can start, stop and upload.")
        st.button("Leave teacher mode", key="access_sign_out", on_click=sign_out)
        return
    st.caption(":material/visibility: Classroom mode: you watch the runs live; the teacher controls them.")
    with st.form("access_form", border=False):
        attempt = st.text_input("Teacher token", type="password", key="access_token")
        if st.form_submit_button("Enter"):
            if sign_in(attempt):
                st.rerun()  # draw the sidebar and the page as the teacher's
            st.error("That is not the teacher's token.", icon=":material/lock:")


def guarded(action: Callable[..., object]) -> Callable[..., None]:
    """``action`` as a widget callback that does nothing unless this session may control runs."""

    def callback(*args: object) -> None:
        if can_control():
            action(*args)

    return callback
