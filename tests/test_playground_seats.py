"""The playground's cap with a visible line, in real pages (AppTest): beyond the cap a session waits, sees
its place, and starts by itself when a seat frees; Pause never waits behind other sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.services.turns import PLAYGROUND_SEATS

from .polling import wait_until

PAGE = Path(__file__).resolve().parents[1] / "pages" / "playground.py"


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _badge(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown if "-badge[" in m.value)


def _waiting_text(at: AppTest) -> str:
    return " ".join(box.value for box in at.info if "Waiting to play" in box.value)


@pytest.fixture
def one_seat(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's cap set to one playing session (it is configurable), with nobody seated before."""
    nobody = lambda: PLAYGROUND_SEATS.playing == 0 and PLAYGROUND_SEATS.waiting == 0  # noqa: E731
    wait_until(nobody, "no seated session", 30)
    monkeypatch.setattr(PLAYGROUND_SEATS, "seats", 1)


def test_sessions_beyond_the_cap_wait_in_line_and_start_when_a_seat_frees(one_seat: None) -> None:
    pages = [_run(AppTest.from_file(str(PAGE), default_timeout=120)) for _ in range(3)]
    for at in pages:  # all three press Play, in this order
        at.button(key="pg_play").click()
        _run(at)
    first, second, third = pages
    assert "training" in _badge(first) and first.session_state.pg_run.running
    assert "waiting" in _badge(second) and "1st in line" in _waiting_text(second)
    assert "waiting" in _badge(third) and "2nd in line" in _waiting_text(third)
    assert not second.session_state.pg_run.running and not third.session_state.pg_run.running

    first.button(key="pg_pause").click()
    _run(first)
    assert not first.session_state.pg_run.running and "paused" in _badge(first)
    _run(second)  # its next refresh: the seat is free and second was first in line
    assert "training" in _badge(second) and not _waiting_text(second)
    assert second.session_state.pg_run.running
    _run(third)
    assert "1st in line" in _waiting_text(third)  # moved up, updated on its refresh
    wait_until(lambda: second.session_state.pg_run.steps_done >= 10, "ten steps of the seated session")
    assert third.session_state.pg_run.steps_done == 0  # a waiting session does not train

    third.button(key="pg_pause").click()  # leaving the line
    _run(third)
    assert "paused" in _badge(third) and not _waiting_text(third)
    second.button(key="pg_pause").click()
    _run(second)
    assert PLAYGROUND_SEATS.playing == 0 and PLAYGROUND_SEATS.waiting == 0
