"""The playground's session state: the run it trains, kept in line with the widgets; Play, Pause, Step, Reset.

State lives in ``st.session_state`` under keys starting with "pg_". "Playing" is the page's intent in
``pg_playing``; the live fragment reconciles the training thread with it on every refresh.
"""

from __future__ import annotations

import uuid

import streamlit as st

from dashboard.playground import data
from dashboard.playground.controls import HIDDEN_CHOICES, Target
from dashboard.playground.run import FlowSettings, PlaygroundRun, Race, one_thread
from dashboard.services.turns import PLAYGROUND_SEATS


def init_state() -> st.runtime.state.SessionStateProxy:
    """The session state, with the page's defaults filled in on a first visit."""
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
        "pg_seat": uuid.uuid4().hex,  # this session's name in the server's line of players
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    return st.session_state


def widget_settings() -> FlowSettings:
    """The model and training settings the left column's widgets hold now."""
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
    """A fresh run (new weights, step 0) on ``target``'s points, or None without points."""
    if target.train is None:
        return None
    with one_thread():
        run = PlaygroundRun(widget_settings(), target.train, target.test)
        run.evaluate()
    return run


def stop_background() -> None:
    """Stops the run's and the race's threads (before they are replaced or paused)."""
    state = st.session_state
    if state.get("pg_run") is not None:
        state.pg_run.pause()
    if state.get("pg_race") is not None:
        state.pg_race.stop()


def sync_run(target: Target) -> PlaygroundRun | None:
    """The current run, rebuilt when the data or the architecture changed; the learning rate is live."""
    state = st.session_state
    settings = widget_settings()
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
        stop_background()
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


def play() -> None:
    """Play: stops a race; the live fragment starts the training thread."""
    state = st.session_state
    if state.pg_race is not None:
        state.pg_race.stop()
    state.pg_racing = False
    state.pg_playing = True  # the live fragment starts the thread


def pause() -> None:
    """Pause: stops training and any race, and gives up this session's seat or place in line."""
    st.session_state.pg_playing = False
    st.session_state.pg_racing = False
    stop_background()
    PLAYGROUND_SEATS.leave(st.session_state.pg_seat)


def place_in_line() -> int:
    """0 when this session may train now (or is not training), else its place in the server's line.

    Asked on every refresh, which is also the seat's heartbeat. While waiting, the threads stay stopped.
    """
    state = st.session_state
    if not (state.pg_playing or state.pg_racing):
        PLAYGROUND_SEATS.leave(state.pg_seat)
        return 0
    place = PLAYGROUND_SEATS.ask(state.pg_seat)
    if place:
        stop_background()
    return place


def ordinal(number: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def step_once() -> None:
    """Step: pauses, then one optimizer step on one random batch."""
    pause()
    run: PlaygroundRun | None = st.session_state.pg_run
    if run is not None and not run.diverged:
        with one_thread():
            run.step()
            run.evaluate()


def reset() -> None:
    """Reset: pauses; this rerun builds the run again with fresh weights."""
    pause()
    st.session_state.pg_run_key = None  # rebuilt with fresh weights on this rerun


def start_race(run: PlaygroundRun, budget: int) -> None:
    """Pauses the main run and starts the NICE vs RealNVP race on its points and settings."""
    state = st.session_state
    pause()
    state.pg_race = Race(run.settings, run.train_points, run.test_points, budget)
    state.pg_race.start()
    state.pg_racing = True
