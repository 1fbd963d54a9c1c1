"""The dashboard's run manager, checkpoint import and chart downsampling, on real (tiny) training runs."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard.services.run_manager import RunManager
from dashboard.services.threads import training_threads
from dashboard.services.uploads import import_checkpoint, read_checkpoint_bytes
from dashboard.widgets import charts
from flows.data.location import HOLDOUT_IMAGES as HOLDOUT_DIGITS
from flows.data.location import plan_image_data
from flows.training import TrainConfig, list_runs, runs

from .conftest import train_in_folder
from .polling import wait_until


def toy_config(steps: int = 100_000, **changes) -> TrainConfig:
    """A tiny RealNVP on two moons: hundreds of steps a second on one core."""
    settings = {
        "dataset": "moons",
        "hidden": [8],
        "blocks": 2,
        "batch_size": 16,
        "steps": steps,
        "eval_every": 0,
        "checkpoint_every": 0,
        "toy_points": 256,
        "warmup_steps": 1,
    }
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture
def manager(tmp_path: Path):
    manager = RunManager(tmp_path / "runs", max_concurrent=1, threads=1)
    yield manager
    manager.stop_all(wait_s=30)


def state_of(manager: RunManager, run_id: str) -> str:
    snapshot = manager.snapshot(run_id)
    assert snapshot is not None
    return snapshot.state


def test_training_threads_leave_the_server_a_core() -> None:
    assert [training_threads(cores) for cores in (1, 2, 4, 16)] == [1, 1, 3, 15]


def test_pause_holds_the_step_and_resume_and_stop_finish_with_a_checkpoint(manager: RunManager) -> None:
    run_id = manager.start(toy_config())
    wait_until(lambda: manager.snapshot(run_id).step >= 5, "the first steps")
    manager.pause(run_id)
    wait_until(lambda: state_of(manager, run_id) == "paused", "the pause")
    status = json.loads((manager.runs_root / run_id / runs.STATUS_FILE).read_text())
    assert status["state"] == "paused"
    held = manager.snapshot(run_id).step
    assert status["step"] == held
    time.sleep(0.3)  # a running thread makes several steps in this time
    assert manager.snapshot(run_id).step == held

    manager.resume(run_id)
    wait_until(lambda: manager.snapshot(run_id).step > held + 5, "steps after resume")
    manager.stop(run_id)
    wait_until(lambda: state_of(manager, run_id) == "stopped", "the stop")
    snapshot = manager.snapshot(run_id)
    assert len(snapshot.steps_seen) == len(snapshot.losses) == snapshot.step
    assert snapshot.samples is not None and snapshot.samples.dtype == torch.uint8
    assert runs.checkpoint_path(snapshot.path, "last").is_file()
    assert runs.read_status(snapshot.path)["state"] == "stopped"
    assert runs.load_checkpoint(runs.checkpoint_path(snapshot.path, "last"))["step"] == snapshot.step


def test_stop_while_paused_ends_the_run(manager: RunManager) -> None:
    run_id = manager.start(toy_config())
    wait_until(lambda: manager.snapshot(run_id).step >= 1, "the first step")
    manager.pause(run_id)
    wait_until(lambda: state_of(manager, run_id) == "paused", "the pause")
    manager.stop(run_id)
    wait_until(lambda: state_of(manager, run_id) == "stopped", "the stop")


def test_second_start_queues_with_its_position_and_starts_when_the_first_ends(manager: RunManager) -> None:
    first = manager.start(toy_config())
    second = manager.start(toy_config(steps=30))
    third = manager.start(toy_config(steps=30))
    assert manager.snapshot(second).state == "queued" and manager.snapshot(second).queue_position == 1
    assert manager.snapshot(third).queue_position == 2
    assert runs.read_status(manager.runs_root / second)["state"] == "queued"  # not "created"
    manager.stop(third)  # a queued run leaves the queue
    assert state_of(manager, third) == "stopped"
    manager.stop(first)
    wait_until(lambda: state_of(manager, second) == "done", "the queued run to train and finish")
    assert manager.snapshot(second).step == 30
    assert manager.snapshot(third).step == 0


def test_more_runs_at_once_start_queued_runs(manager: RunManager) -> None:
    first = manager.start(toy_config())
    second = manager.start(toy_config())
    assert state_of(manager, second) == "queued"
    manager.set_max_concurrent(2)
    assert state_of(manager, second) in ("running", "paused")
    assert set(manager.active_ids()) == {first, second}
    with pytest.raises(ValueError, match="positive integer"):
        manager.set_max_concurrent(0)


def test_continue_trains_a_stopped_run_on_from_its_checkpoint(manager: RunManager) -> None:
    run_id = manager.start(toy_config(steps=40))
    wait_until(lambda: manager.snapshot(run_id).step >= 10, "the first steps")
    manager.stop(run_id)
    wait_until(lambda: state_of(manager, run_id) == "stopped", "the stop")
    stopped_at = manager.snapshot(run_id).step
    manager.continue_run(run_id)
    wait_until(lambda: state_of(manager, run_id) == "done", "the continued run to finish")
    snapshot = manager.snapshot(run_id)
    assert snapshot.step == 40
    assert snapshot.steps_seen[0] == stopped_at + 1  # it continued; it did not start again


def test_missing_images_are_explained_before_anything_starts(manager: RunManager, tmp_path: Path) -> None:
    config = toy_config(dataset="mnist", toy_points=20000, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"not in .*nowhere.*Home page"):
        manager.prepare_config(config)


def test_image_data_plan_follows_the_files_on_disk(mnist_dir: Path, tmp_path: Path) -> None:
    plan = plan_image_data("mnist", mnist_dir)
    assert plan.holdout == HOLDOUT_DIGITS and plan.problem is None
    assert "9,000" in plan.note and "1,000" in plan.note
    empty = plan_image_data("mnist", tmp_path)
    assert empty.problem and "Home page" in empty.problem


def test_runs_of_another_process_are_listed_with_their_curves(manager: RunManager) -> None:
    """A run written by the Trainer directly (as main.py does) shows up with curves from metrics.jsonl."""
    config = toy_config(steps=30, eval_every=10)
    path = runs.create_run(manager.runs_root, config, name="from-terminal")
    train_in_folder(config, path)
    assert [info.run_id for info in list_runs(manager.runs_root)] == ["from-terminal"]
    curves = charts.read_curves(path)
    assert curves.steps.tolist() == [10, 20, 30]  # log_every = 10
    assert curves.eval_steps.tolist() == [10, 20, 30]
    assert manager.snapshot("from-terminal") is None
    with pytest.raises(ValueError, match="not trained by this dashboard"):
        manager.pause("from-terminal")


def _finished_run(tmp_path: Path) -> Path:
    config = toy_config(steps=5)
    path = runs.create_run(tmp_path / "source", config, name="source")
    train_in_folder(config, path)
    return runs.checkpoint_path(path, "last")


def test_import_checkpoint_creates_a_run_that_loads(manager: RunManager, tmp_path: Path) -> None:
    checkpoint = _finished_run(tmp_path)
    run_id = import_checkpoint(manager.runs_root, checkpoint.read_bytes(), "my model.pt")
    assert run_id.startswith("upload-my-model-")
    model, _ = runs.load_run_model(manager.runs_root / run_id)
    original, _ = runs.load_run_model(checkpoint.parents[1])
    x = torch.randn(7, 2)
    torch.testing.assert_close(model.logProbability(x), original.logProbability(x))
    assert runs.read_status(manager.runs_root / run_id)["state"] == "done"


class NotWeights:
    """A class instance: torch.save pickles it; weights_only loading must refuse it."""

    def __init__(self) -> None:
        self.payload = "code"


def test_wrong_or_corrupt_checkpoints_get_clear_messages(tmp_path: Path) -> None:
    good = _finished_run(tmp_path).read_bytes()
    with pytest.raises(ValueError, match="empty"):
        read_checkpoint_bytes(b"")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        read_checkpoint_bytes(b"hello, I am a text file")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        read_checkpoint_bytes(good[: len(good) // 2])  # cut short
    pickled = io.BytesIO()
    torch.save({"model": NotWeights(), "config": {}}, pickled)
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        read_checkpoint_bytes(pickled.getvalue())
    plain = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, plain)
    with pytest.raises(ValueError, match="not a Flow Lab checkpoint"):
        read_checkpoint_bytes(plain.getvalue())
    state = torch.load(io.BytesIO(good), weights_only=True)
    state["config"]["hidden"] = [9]  # the weights no longer fit the config
    mismatched = io.BytesIO()
    torch.save(state, mismatched)
    with pytest.raises(ValueError, match="does not fit its config"):
        read_checkpoint_bytes(mismatched.getvalue())


def test_downsample_keeps_short_curves_and_averages_long_ones() -> None:
    x = np.arange(1, 101)
    assert charts.downsample(x, x * 2.0, max_points=200)[0] is x
    steps = np.arange(1, 100_001)
    losses = 3.0 * steps + 1.0  # linear: a bucket's mean is the line at the bucket's mean step
    xs, ys = charts.downsample(steps, losses, max_points=2000)
    assert len(xs) == len(ys) <= 2000
    assert xs[-1] == 100_000 and ys[-1] == losses[-1]
    np.testing.assert_allclose(ys, 3.0 * xs + 1.0)
    assert np.all(np.diff(xs) > 0)


def test_curves_figure_overlays_runs_in_bits_per_dim() -> None:
    losses = np.array([2000.0, 1500.0])  # nats on [0, 1)^784
    first = charts.Curves("a", np.array([1, 2]), losses, np.array([2]), np.array([1400.0]), 784, True)
    second = charts.Curves("b", np.array([1, 2]), losses - 100, np.array([]), np.array([]), 784, True)
    figure = charts.curves_figure([first, second])
    assert [trace.name for trace in figure.data] == ["a: train", "a: test", "b: train"]
    np.testing.assert_allclose(figure.data[0].y, 8 + losses / (784 * np.log(2)))
    assert figure.layout.yaxis.title.text == "bits / dim"


@pytest.mark.parametrize("name", ["run_manager", "run_record", "live_samples", "loop", "threads", "uploads"])
def test_the_training_thread_code_never_imports_streamlit(name: str) -> None:
    """These modules run in training threads: Streamlit must not be called there, so it is not imported."""
    import ast
    import importlib

    module = importlib.import_module(f"dashboard.services.{name}")
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(found.split(".")[0] == "streamlit" for found in imported)


def test_histogram_bins_the_bulk_and_counts_the_outliers() -> None:
    values = np.concatenate([np.linspace(1.0, 2.0, 990), np.full(10, 30.0)])
    figure = charts.histogram_figure(values, "bits / dim")
    (histogram,) = figure.data
    assert histogram.xbins.end < 3  # the bins cover the bulk, not the far outliers
    note = figure.layout.annotations[-1]
    assert "10 above" in note.text
    mean = next(a for a in figure.layout.annotations if a.text.startswith("mean"))
    # The note sits above the plot area (bottom edge on its top), the mean's label inside it: no overlap.
    assert (note.yref, note.y, note.yanchor) == ("paper", 1, "bottom")
    assert mean.yanchor == "top" and mean.y <= 1


def test_a_time_budget_run_shows_its_time_left_and_how_far_it_is(manager: RunManager) -> None:
    from dashboard.train.run_view import load_view, progress_fraction, progress_text

    budget_s = 6.0
    run_id = manager.start(toy_config(minutes=budget_s / 60))
    wait_until(lambda: manager.snapshot(run_id).elapsed > 1.0, "a second of training")
    snapshot = manager.snapshot(run_id)
    if snapshot.state == "running":
        assert snapshot.eta_seconds == pytest.approx(budget_s - snapshot.elapsed, abs=1e-9)
    view = load_view(manager, run_id)
    assert progress_fraction(view) == pytest.approx(min(1.0, view.elapsed / budget_s))
    assert 0.0 < progress_fraction(view) <= 1.0
    assert " of 6 s" in progress_text(view) and "/ 100,000" not in progress_text(view)
    wait_until(lambda: state_of(manager, run_id) == "done", "the end of the budget")
    assert progress_fraction(load_view(manager, run_id)) == pytest.approx(1.0, abs=0.05)


def test_a_run_says_it_trains_the_sample_judge_until_its_first_test_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.services.run_manager import _scorer
    from dashboard.services.run_record import ManagedRun
    from flows.training.events import EvalEvent

    managed = ManagedRun("r", tmp_path, toy_config(), None, resume=False)
    managed.state = "running"
    managed.config = replace(toy_config(), dataset="mnist", model="realnvp", score_samples=16)
    monkeypatch.delenv("FLOWLAB_NO_SAMPLE_SCORE", raising=False)
    scorer = _scorer(managed)
    assert scorer is not None and scorer.on_progress is not None
    scorer.on_progress("judge: epoch 2/6, loss 0.210")  # what load_judge says while it trains
    assert managed.activity == "judge: epoch 2/6, loss 0.210"
    managed.record(EvalEvent(step=500, elapsed=3.0, test_loss=1.0, test_bits_per_dim=1.5))
    assert managed.activity is None  # the first test ended: the note goes
