"""The Guided tour page in AppTest: a real digit through a fresh and a trained model; the sum agrees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flows.training import TrainConfig, runs

from .apptest import open_page, use_folders
from .conftest import train_in_folder

TIMEOUT_S = 240


def check_difference(at: AppTest) -> float:
    """The page's printed difference between the trace's sum and logProbability."""
    text = next(code.value for code in at.code if "difference" in code.value)
    return float(re.search(r"difference = (\S+)", text).group(1))


def _walk(at: AppTest) -> int:
    """Clicks Next until the last step, checking the sum at each; returns the number of steps."""
    last = int(at.slider(key="tour_step").max)
    for expected in range(1, last + 1):
        at.button(key="tour_next").click().run()
        assert at.slider(key="tour_step").value == expected
        assert not at.exception
        assert abs(check_difference(at)) < 1e-9
    at.button(key="tour_back").click().run()
    assert at.slider(key="tour_step").value == last - 1
    return last + 1


def test_tour_fresh_model(mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_folders(monkeypatch, mnist_dir, tmp_path / "runs")
    at = open_page("pages/tour.py", TIMEOUT_S)
    assert not at.exception
    assert _walk(at) == 2 + 5 + 2  # pixels, dequantization, logit + 4 couplings, z, way back


def test_tour_trained_glow(mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs_dir = tmp_path / "runs"
    monkeypatch.setenv("FLOWLAB_DATA_DIR", str(mnist_dir))
    config = TrainConfig(
        model="glow", dataset="mnist", levels=2, steps_per_level=1, hidden_channels=8, steps=2, batch_size=16,
        eval_every=0, checkpoint_every=0, warmup_steps=0, sample_count=4, holdout=1000,
        data_dir=str(mnist_dir),
    )  # fmt: skip
    train_in_folder(config, runs.create_run(runs_dir, config, name="tiny-glow"))
    monkeypatch.setenv("FLOWLAB_RUNS_DIR", str(runs_dir))
    at = open_page("pages/tour.py", TIMEOUT_S)
    run = next(label for label in at.selectbox(key="tour_model").options if label.startswith("Run "))
    at.selectbox(key="tour_model").select(run).run()
    assert not at.exception
    assert _walk(at) > 10  # leaf by leaf
