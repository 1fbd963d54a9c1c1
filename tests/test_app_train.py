"""The Train page in streamlit.testing.v1.AppTest: widgets, validation next to the widget, Start/Pause/
Resume/Stop changing the run's state, reattaching by the run id in the URL, checkpoint upload."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from flows import registry
from flows.training import TrainConfig, runs

from .apptest import open_page, use_folders
from .browser import make_data_dir
from .conftest import train_in_folder

TRAIN_PAGE = "pages/train.py"
TIMEOUT_S = 60
SETTINGS_KEYS = (
    "train_dataset",
    "train_model",
    "train_blocks",
    "train_hidden",
    "train_activation",
    "train_prior",
    "train_lr",
    "train_batch_size",
    "train_steps",
)


@pytest.fixture
def folders(mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A data folder with MNIST's test digits only and an empty runs folder, named in the environment."""
    data_dir = make_data_dir(mnist_dir, tmp_path / "data" / "mnist")
    runs_dir = tmp_path / "runs"
    use_folders(monkeypatch, data_dir, runs_dir)
    return data_dir, runs_dir


def train_page(run_id: str | None = None) -> AppTest:
    return open_page(TRAIN_PAGE, TIMEOUT_S, run=run_id)


def widget(app: AppTest, key: str):
    return next(element for element in app.main if getattr(element, "key", None) == key)


def button(app: AppTest, key: str):
    return next(b for b in app.button if b.key == key)


def run_header(app: AppTest, run_id: str) -> str:
    return next(m.value for m in app.markdown if m.value.startswith(f"#### {run_id}"))


def refresh_until(
    app: AppTest, condition: Callable[[AppTest], bool], what: str, timeout_s: float = 60
) -> None:
    """Reruns the page (as the live fragment does every second) until ``condition`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition(app.run()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def step_tile(app: AppTest) -> int:
    return int(next(m.value for m in app.metric if m.label == "Step").replace(",", ""))


def test_renders_without_a_run_and_says_what_to_do(folders) -> None:
    app = train_page()
    assert not app.exception
    keys = {getattr(element, "key", None) for element in app.main}
    assert set(SETTINGS_KEYS) <= keys
    assert not button(app, "train_start").disabled
    texts = " ".join(info.value for info in app.info)
    assert "No run is training" in texts and "Start training" in texts
    assert "Only MNIST's 10,000 test images" in texts and "9,000" in texts


def test_invalid_settings_are_explained_and_nothing_starts(folders) -> None:
    _, runs_dir = folders
    app = train_page()
    widget(app, "train_hidden").set_value("256, lots").run()
    assert any("separated by commas, e.g. 256, 256" in error.value for error in app.error)
    assert button(app, "train_start").disabled  # nothing can start
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_missing_mnist_is_explained_and_a_toy_dataset_still_trains(folders) -> None:
    data_dir, _ = folders
    for file in data_dir.iterdir():
        file.unlink()
    app = train_page()
    assert any("not in" in error.value and "Home page" in error.value for error in app.error)
    assert button(app, "train_start").disabled
    widget(app, "train_dataset").set_value("moons").run()
    assert not app.error
    assert not button(app, "train_start").disabled


def test_start_pause_resume_stop_change_the_run_state(folders) -> None:
    _, runs_dir = folders
    app = train_page()
    widget(app, "train_hidden").set_value("8")
    widget(app, "train_blocks").set_value(2)
    widget(app, "train_batch_size").set_value(16)
    widget(app, "train_steps").set_value(100_000)
    app.run()
    button(app, "train_start").click().run()
    assert not app.exception
    run_id = app.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    assert (runs_dir / run_id / runs.CONFIG_FILE).is_file()
    config = runs.read_config(runs_dir / run_id)
    assert (config.hidden, config.holdout, config.num_threads >= 1) == ([8], 1000, True)
    refresh_until(app, lambda a: "running" in run_header(a, run_id) and step_tile(a) > 3, "steps")

    button(app, f"pause-{run_id}").click().run()
    refresh_until(app, lambda a: "paused" in run_header(a, run_id), "the pause")
    status = json.loads((runs_dir / run_id / runs.STATUS_FILE).read_text())
    assert status["state"] == "paused" and step_tile(app) == status["step"]

    # A reload (a new session with the run id in the URL) finds the same paused run.
    other = train_page(run_id)
    assert "paused" in run_header(other, run_id)
    assert step_tile(other) == status["step"]

    button(other, f"resume-{run_id}").click().run()
    refresh_until(
        app, lambda a: "running" in run_header(a, run_id) and step_tile(a) > status["step"], "resume"
    )

    button(app, f"stop-{run_id}").click().run()
    refresh_until(app, lambda a: "stopped" in run_header(a, run_id), "the stop")
    assert runs.checkpoint_path(runs_dir / run_id, "last").is_file()
    assert runs.read_status(runs_dir / run_id)["state"] == "stopped"
    assert any(d.label == "last.pt" for d in app.get("download_button"))


def test_the_tensorboard_setting_gives_a_run_with_event_files(folders) -> None:
    _, runs_dir = folders
    app = train_page()
    for key, value in [
        ("train_dataset", "moons"),
        ("train_hidden", "8"),
        ("train_blocks", 1),
        ("train_steps", 20),
    ]:
        widget(app, key).set_value(value)
    widget(app, "train_eval_every").set_value(10)
    widget(app, "train_tensorboard").check().run()
    button(app, "train_start").click().run()
    assert not app.exception
    run_id = app.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    assert runs.read_config(runs_dir / run_id).tensorboard
    refresh_until(app, lambda a: "done" in run_header(a, run_id), "the run to finish")
    assert list((runs_dir / run_id).glob("events.out.tfevents.*"))


def test_uploaded_checkpoints_are_imported_or_explained(folders, tmp_path: Path) -> None:
    _, runs_dir = folders
    config = TrainConfig(dataset="moons", hidden=[8], blocks=2, batch_size=16, steps=3, toy_points=64)
    source = runs.create_run(tmp_path / "elsewhere", config, name="source")
    train_in_folder(config, source)
    checkpoint = runs.checkpoint_path(source, "last").read_bytes()

    app = train_page()
    app.get("file_uploader")[0].set_value(
        ("notes.pt", b"not a checkpoint at all", "application/octet-stream")
    ).run()
    assert any(
        "notes.pt" in error.value and "not a readable PyTorch checkpoint" in error.value
        for error in app.error
    )
    assert not list(runs_dir.glob("upload-*"))

    app.get("file_uploader")[0].set_value(("moons.pt", checkpoint, "application/octet-stream")).run()
    assert any("Imported as run upload-moons-" in success.value for success in app.success)
    (imported,) = runs_dir.glob("upload-moons-*")
    state = runs.load_checkpoint(runs.checkpoint_path(imported, "last"))
    torch.testing.assert_close(state["model"], torch.load(source / "checkpoints" / "last.pt")["model"])


def test_a_run_training_in_a_terminal_is_shown_live_and_left_to_its_process(folders) -> None:
    """A run folder whose status.json names a live process (as main.py writes) shows as running, read-only."""
    _, runs_dir = folders
    config = TrainConfig(dataset="moons", hidden=[8], blocks=2, batch_size=16, steps=1000, toy_points=64)
    path = runs.create_run(runs_dir, config, name="terminal-run")
    writer = runs.MetricsWriter(path / runs.METRICS_FILE)
    for step in (10, 20, 30):
        writer.write({"kind": "step", "step": step, "loss": 3.0 - step / 100, "images_per_sec": 500.0})
    writer.close()
    runs.write_status(path, "running", step=30, steps=1000)  # this test's own pid: a live process

    app = train_page("terminal-run")
    assert not app.exception
    assert "running" in run_header(app, "terminal-run")
    assert step_tile(app) == 30
    assert any("another process" in warning.value for warning in app.warning)
    assert button(app, "pause-terminal-run").disabled and button(app, "stop-terminal-run").disabled


def test_the_run_panel_shows_the_sample_score_and_an_overfitting_warning(folders) -> None:
    _, runs_dir = folders
    config = TrainConfig(hidden=[16], blocks=2, steps=30, eval_every=10)
    path = runs.create_run(runs_dir, config, name="watched")
    score = {"count": 500, "recognised": 0.42, "class_entropy_bits": 3.1, "frechet": 55.5, "temperature": 0.7}
    real = {"count": 500, "recognised": 0.91, "class_entropy_bits": 3.3, "frechet": 9.8}
    lines = [
        {"kind": "eval", "step": 10, "test_bits_per_dim": 3.0, "best": True, "sample_score": None},
        {
            "kind": "eval",
            "step": 20,
            "test_bits_per_dim": 3.2,
            "best": False,
            "sample_score": {**score, "real": real},
        },
        {
            "kind": "overfit",
            "step": 20,
            "message": "overfitting: held-out 3.200 bits/dim is 0.200 above its best",
        },
    ]
    (path / runs.METRICS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    app = train_page("watched")
    assert not app.exception
    assert any("overfitting: held-out 3.200" in warning.value for warning in app.warning)
    table = next(frame.value for frame in app.dataframe if "recognised" in frame.value.columns)
    assert list(table["recognised"]) == ["42%", "91%"]
    assert list(table["Fréchet"]) == [55.5, 9.8]
    # a new best after the warning withdraws it
    lines.append({"kind": "eval", "step": 30, "test_bits_per_dim": 2.9, "best": True, "sample_score": None})
    (path / runs.METRICS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    app = train_page("watched")
    assert not any("overfitting" in warning.value for warning in app.warning)


def test_a_finished_run_continues_for_n_more_steps_as_one_longer_run(folders, tmp_path: Path) -> None:
    """'Continue for N more steps' on a done run: it trains on to the new total; with a constant schedule
    its weights are those of one uninterrupted run of that length."""
    _, runs_dir = folders
    config = TrainConfig(
        dataset="moons", hidden=[8], blocks=2, batch_size=16, steps=30, toy_points=256, schedule="constant",
        warmup_steps=5, eval_every=0, checkpoint_every=0, num_threads=1,
    )  # fmt: skip
    train_in_folder(config, runs.create_run(runs_dir, config, name="finished"))
    whole_dir = runs.create_run(tmp_path / "whole", config.resumed({"steps": 50}), name="whole")
    train_in_folder(runs.read_config(whole_dir), whole_dir)
    app = train_page("finished")
    assert not app.exception and "done" in run_header(app, "finished")
    assert not any(b.key == "continue-finished" for b in app.button)  # Continue is for unfinished runs
    widget(app, "extend-steps-finished").set_value(20).run()
    extend = button(app, "extend-finished")
    assert extend.label == "Continue for 20 more steps"
    extend.click().run()
    assert not app.exception
    refresh_until(app, lambda a: "done" in run_header(a, "finished") and step_tile(a) == 50, "the extension")
    assert runs.read_config(runs_dir / "finished").steps == 50
    extended = runs.load_checkpoint(runs.checkpoint_path(runs_dir / "finished", "last"))
    whole = runs.load_checkpoint(runs.checkpoint_path(whole_dir, "last"))
    assert extended["step"] == whole["step"] == 50
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, extended["model"][name]), name


def _samples_share(app: AppTest) -> float:
    """The share of the page's width the run panel's samples column takes (the column holding the grid)."""
    column = next(c for c in app.columns if any(type(e).__name__ == "Image" for e in c.children.values()))
    return column.weight


def test_the_live_sample_grid_can_be_enlarged_and_is_large_in_presenter_mode(folders) -> None:
    from dashboard.train import live
    from flows.training.images import write_png

    _, runs_dir = folders
    path = runs.create_run(runs_dir, TrainConfig(hidden=[16], blocks=2, steps=30), name="grid")
    write_png(path / runs.SAMPLES_FILE, torch.zeros(64, 64, dtype=torch.uint8))
    app = train_page("grid")
    assert not app.exception
    normal = _samples_share(app)
    assert normal == pytest.approx(1 / 3.2)  # beside the curves: [2.2, 1]
    next(b for b in app.get("button_group") if b.key == live.SIZE_KEY).set_value(live.LARGE).run()
    assert not app.exception
    assert _samples_share(app) == pytest.approx(0.5)

    presenting = open_page(TRAIN_PAGE, TIMEOUT_S, run="grid", run_now=False)
    presenting.query_params["presenter"] = "1"
    presenting.run()
    assert not presenting.exception
    assert presenting.session_state["presenter"] is True
    assert _samples_share(presenting) == pytest.approx(0.5)


def test_mlp_families_start_from_their_preset_on_digits_and_from_the_defaults_on_toys(folders) -> None:
    app = train_page()
    preset = registry.get_family("realnvp").preset("cpu")
    assert widget(app, "train_ema_decay_image_realnvp").value == pytest.approx(preset["ema_decay"])
    assert widget(app, "train_augment_shift_image_realnvp").value == preset["augment_shift"] > 0
    widget(app, "train_augment_shift_image_realnvp").set_value(preset["augment_shift"] - 1).run()
    assert not app.error and not button(app, "train_start").disabled
    widget(app, "train_dataset").set_value("moons").run()  # a toy has no pixels to move: the defaults
    assert widget(app, "train_augment_shift_toy_realnvp").value == TrainConfig.augment_shift == 0
    assert widget(app, "train_ema_decay_toy_realnvp").value == TrainConfig.ema_decay
    widget(app, "train_augment_shift_toy_realnvp").set_value(1).run()
    assert any("2D toys have no pixels to move" in error.value for error in app.error)
    assert button(app, "train_start").disabled
