"""The Playground page in Streamlit's AppTest: controls, targets, uploads, layer view, race and export."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard.playground import data
from dashboard.playground.page import DEFAULTS, LIVE_TABS
from dashboard.widgets import live_chart

PAGE = Path(__file__).resolve().parents[1] / "pages" / "playground.py"


def _page() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(metric.value for metric in at.metric if metric.label == label)


def _state(at: AppTest) -> str:
    """The status row's badge, e.g. ":green-badge[:material/play_circle: training]"."""
    return " ".join(m.value for m in at.markdown if "-badge[" in m.value)


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    """Polls ``condition`` (the background thread trains between AppTest runs)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background training"
        time.sleep(0.05)


def _shown_step(at: AppTest) -> int:
    return int(_metric(at, "Step").replace(",", ""))


def _run_after(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_renders_controls_and_the_four_live_panels() -> None:
    at = _page()
    assert [b.label for b in at.button][:4] == ["Play", "Pause", "Step", "Reset"]
    assert at.button(key="pg_pause").disabled and not at.button(key="pg_play").disabled
    assert _shown_step(at) == 0 and "paused" in _state(at)
    assert _metric(at, "Gaussian fit") == f"{data.gaussian_fit_nll(at.session_state.pg_run.train_points):.3f}"
    charts = [chart.proto.component_name for chart in at.get("component_instance")]
    assert charts == [live_chart._component.name] * 4  # the four live panels, updated in place
    assert at.session_state.pg_run.train_points.shape == (2000, 2)


def test_play_pause_step_and_reset_change_the_state() -> None:
    at = _page()
    first_run = at.session_state.pg_run
    at.button(key="pg_play").click()
    _run_after(at)
    run = at.session_state.pg_run
    assert at.session_state.pg_playing and run.running  # a background thread trains
    _wait_for(lambda: run.steps_done >= 5)
    _run_after(at)
    assert _shown_step(at) >= 5 and "training" in _state(at)
    assert at.button(key="pg_play").disabled and not at.button(key="pg_pause").disabled

    at.button(key="pg_pause").click()
    _run_after(at)
    assert not at.session_state.pg_playing and not run.running
    paused = run.steps_done
    time.sleep(0.3)
    _run_after(at)
    assert run.steps_done == paused and _shown_step(at) == paused  # nothing trains while paused

    at.button(key="pg_step").click()
    _run_after(at)
    assert at.session_state.pg_run.steps_done == paused + 1  # exactly one optimizer step
    assert at.session_state.pg_run.trainer.step == paused + 1

    at.button(key="pg_reset").click()
    _run_after(at)
    fresh = at.session_state.pg_run
    assert fresh is not first_run and fresh.steps_done == 0 and _shown_step(at) == 0
    assert not at.session_state.pg_playing


def test_every_target_generates_points() -> None:
    at = _page()
    for target in data.TOY_TARGETS:
        at.selectbox(key="pg_target").select(target)
        _run_after(at)
        run = at.session_state.pg_run
        assert run is not None, target
        assert run.train_points.shape == (2000, 2) and torch.isfinite(run.train_points).all()
        assert at.slider(key="pg_noise").value == pytest.approx(data.default_noise(target))
        assert torch.equal(run.train_points, data.toy_points(target, 2000, data.default_noise(target), 0))

    at.selectbox(key="pg_target").select(data.DRAWN_TARGET)
    _run_after(at)
    assert at.session_state.pg_run is None
    assert any("Click the canvas" in info.value for info in at.info)
    assert at.button(key="pg_play").disabled
    at.session_state["pg_spots"] = [[-2.0, 1.0], [2.0, -1.0]]  # what two canvas clicks leave behind
    _run_after(at)
    run = at.session_state.pg_run
    assert run is not None and run.train_points.shape == (2000, 2)
    distances = torch.cdist(run.train_points, torch.tensor([[-2.0, 1.0], [2.0, -1.0]])).min(1).values
    assert distances.median() < 0.5

    at.selectbox(key="pg_target").select(data.UPLOAD_TARGET)
    _run_after(at)
    assert at.session_state.pg_run is None and any("Upload a CSV" in info.value for info in at.info)
    rows = "\n".join(f"{i % 17},{(i * 7) % 11}" for i in range(300))
    at.file_uploader(key="pg_upload").set_value(("points.csv", f"x,y\n{rows}\n".encode(), "text/csv"))
    _run_after(at)
    run = at.session_state.pg_run
    assert run is not None and len(run.train_points) + len(run.test_points) == 300
    assert not at.error


BAD_UPLOADS = {
    "text": (b"these are words\nnot numbers at all\n" * 10, "is not a number"),
    "one column": (("value\n" + "\n".join(str(i) for i in range(30))).encode(), "one column"),
    "NaN": (("x,y\n" + "\n".join(f"{i},{i % 5}" for i in range(30)) + "\n4,NaN\n").encode(), "NaN"),
    "10^7 rows": (b"x,y\n" + b"0.5,1.5\n" * 10**7, "at most 50,000 rows"),
}


def test_bad_uploads_get_a_clear_message_and_no_traceback() -> None:
    at = _page()
    at.selectbox(key="pg_target").select(data.UPLOAD_TARGET)
    _run_after(at)
    for case, (content, phrase) in BAD_UPLOADS.items():
        at.file_uploader(key="pg_upload").set_value((f"{case}.csv", content, "text/csv"))
        _run_after(at)
        messages = " ".join(error.value for error in at.error)
        assert phrase in messages, (case, messages)
        assert f"{case}.csv" in messages
        assert at.session_state.pg_run is None and at.button(key="pg_play").disabled


def test_layer_view_shows_each_coupling_and_nice_keeps_areas() -> None:
    at = _page()
    at.session_state["pg_tab"] = LIVE_TABS[1]
    _run_after(at)
    layer = at.select_slider(key="pg_layer")
    couplings = 2 * DEFAULTS.blocks
    assert len(layer.options) == 1 + couplings  # the prior and 2K couplings of K RealNVP blocks
    assert any("RealNVP scales" in info.value for info in at.info)
    layer.set_value(3)
    _run_after(at)
    assert len(at.get("plotly_chart")) == 2  # points and grid after layer 3, log|det| bars
    assert any("def _map" in code.value and "torch.exp(s)" in code.value for code in at.code)  # real source

    at.radio(key="pg_model").set_value("nice")
    _run_after(at)
    assert len(at.select_slider(key="pg_layer").options) == 2 + couplings  # and NICE's final scaling
    notes = " ".join(info.value for info in at.info)
    assert "NICE keeps areas" in notes and "0.0e+00" in notes


def test_race_starts_and_export_offers_png_and_csv() -> None:
    at = _page()
    at.session_state["pg_tab"] = LIVE_TABS[2]
    _run_after(at)
    at.button(key="pg_race_start").click()
    _run_after(at)
    race = at.session_state.pg_race
    assert at.session_state.pg_racing and race is not None and race.running
    assert set(race.runs) == {"nice", "realnvp"}
    assert race.runs["nice"].settings.hidden == race.runs["realnvp"].settings.hidden == DEFAULTS.hidden
    _wait_for(lambda: race.steps_done >= 5)
    at.button(key="pg_pause").click()  # Pause stops the race too
    _run_after(at)
    assert not race.running

    at.session_state["pg_tab"] = LIVE_TABS[3]
    _run_after(at)
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Download panels (PNG)", "Download metrics (CSV)"]


def test_back_and_next_step_through_the_layers() -> None:
    at = _page()
    at.session_state["pg_tab"] = LIVE_TABS[1]
    _run_after(at)
    last = len(at.select_slider(key="pg_layer").options) - 1
    assert at.select_slider(key="pg_layer").value == last and at.button(key="pg_layer_next").disabled
    at.button(key="pg_layer_back").click()
    _run_after(at)
    assert at.select_slider(key="pg_layer").value == last - 1
    at.button(key="pg_layer_next").click()
    _run_after(at)
    assert at.select_slider(key="pg_layer").value == last
    at.radio(key="pg_model").set_value("nice")  # one more layer: NICE's final scaling
    _run_after(at)
    at.button(key="pg_layer_next").click()
    _run_after(at)
    assert at.select_slider(key="pg_layer").value == last + 1
    at.radio(key="pg_model").set_value("realnvp")  # that position no longer exists: back to the last
    _run_after(at)
    assert at.select_slider(key="pg_layer").value == last and not at.exception


def test_the_live_panels_unvalidated_specs_pass_plotlys_validation() -> None:
    """figures builds the four live panels without validation; each spec is valid all the same."""
    import numpy as np
    import plotly.graph_objects as go

    from dashboard.playground import figures

    generator = np.random.default_rng(0)
    shown = generator.normal(size=(800, 2))
    grid = generator.normal(size=(2, 9, 30, 2))
    built = [
        figures.samples_figure(shown, generator.normal(size=(800, 2)), 4.0),
        figures.density_figure(generator.normal(size=(64, 64)), shown, 4.0),
        figures.warped_grid_figure(grid, shown, 4.0),
        figures.loss_figure(
            list(range(1, 301)), list(np.linspace(3, 2, 300)), [100, 200], [2.9, 2.5], 3.2, 1.6, "estimated"
        ),
    ]
    for figure in built:
        checked = go.Figure(figure.to_dict())  # validates every property: raises on a bad one
        assert checked.to_plotly_json()["layout"]["height"] == figure.layout.height
        assert len(checked.data) == len(figure.data) > 0
