"""--tensorboard and the dashboard's setting: event files in the run folder, read back with TensorBoard's
own reader (curves equal to metrics.jsonl, sample grids per evaluation, resumed runs without duplicates)."""

from __future__ import annotations

import json
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from flows import cli
from flows.training import EvalEvent, TrainConfig, build_model, runs
from flows.training.tensorboard import TensorBoardLogger

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="tensorboard is not installed (requirements.txt has it)",
)

TOY = ["--dataset", "moons", "--toy-points", "256", "--hidden", "8", "--blocks", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> None:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _events(run: Path) -> event_accumulator.EventAccumulator:
    reader = event_accumulator.EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    return reader.Reload()


def _curve(reader: event_accumulator.EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in reader.Scalars(tag)]


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_main_tensorboard_writes_curves_and_sample_grids(tmp_path: Path) -> None:
    argv = [*TOY, "--steps", "6", "--log-every", "2", "--eval-every", "3", "--tensorboard"]
    assert cli.main([*argv, "--runs-dir", str(tmp_path), "--run-name", "toy"]) == 0
    run = tmp_path / "toy"
    assert list(run.glob("events.out.tfevents.*")), "no event file in the run folder"
    reader = _events(run)
    lines = _metrics(run)
    steps = [line for line in lines if line["kind"] == "step"]
    evals = [line for line in lines if line["kind"] == "eval"]
    for tag, key, source in [
        ("loss/train", "loss", steps),
        ("optim/lr", "lr", steps),
        ("optim/grad_norm", "grad_norm", steps),
        ("speed/images_per_sec", "images_per_sec", steps),
        ("loss/test", "test_loss", evals),
    ]:
        curve = _curve(reader, tag)
        assert [step for step, _ in curve] == [line["step"] for line in source], tag
        assert [value for _, value in curve] == pytest.approx([line[key] for line in source], rel=1e-6), tag
    assert [step for step, _ in _curve(reader, "loss/train")] == [2, 4, 6]
    assert "bits_per_dim/train" not in reader.Tags()["scalars"]  # 2D points are not pixels
    grids = reader.Images("samples")
    assert [image.step for image in grids] == [3, 6]
    assert (grids[-1].width, grids[-1].height) == _png_size(run / runs.SAMPLES_FILE)


def test_image_runs_log_bits_per_dim_and_digit_grids(mnist_dir: Path, tmp_path: Path) -> None:
    argv = ["--dataset", "mnist", "--data-dir", str(mnist_dir), "--holdout", "1000", "--hidden", "8"]
    argv += ["--blocks", "1", "--batch-size", "32", "--steps", "4", "--eval-every", "2", "--log-every", "2"]
    argv += ["--eval-batch-size", "500", "--sample-count", "16", "--no-progress", "--tensorboard"]
    assert cli.main([*argv, "--runs-dir", str(tmp_path), "--run-name", "digits"]) == 0
    run = tmp_path / "digits"
    reader = _events(run)
    evals = [line for line in _metrics(run) if line["kind"] == "eval"]
    test_curve = _curve(reader, "bits_per_dim/test")
    assert [step for step, _ in test_curve] == [2, 4]
    assert [v for _, v in test_curve] == pytest.approx(
        [line["test_bits_per_dim"] for line in evals], rel=1e-6
    )
    assert [step for step, _ in _curve(reader, "bits_per_dim/train")] == [2, 4]
    grid = reader.Images("samples")[-1]
    assert (grid.width, grid.height) == (4 * 30 + 2, 4 * 30 + 2)  # 16 digits of 28 px, 2 px apart


def test_a_resumed_run_replaces_what_followed_its_checkpoint(tmp_path: Path) -> None:
    argv = [*TOY, "--log-every", "2", "--eval-every", "0", "--tensorboard", "--runs-dir", str(tmp_path)]
    assert cli.main([*argv, "--steps", "4", "--run-name", "r"]) == 0
    run = tmp_path / "r"
    checkpoint = runs.checkpoint_path(run, "last")
    shutil.copy(checkpoint, tmp_path / "step4.pt")
    time.sleep(1.1)  # event files are named by the second they were opened
    assert cli.main(["--resume", str(run), "--steps", "8", "--no-progress"]) == 0
    shutil.copy(tmp_path / "step4.pt", checkpoint)  # as if that session died before its last checkpoint
    time.sleep(1.1)
    assert cli.main(["--resume", str(run), "--steps", "8", "--no-progress"]) == 0
    assert len(list(run.glob("events.out.tfevents.*"))) == 3
    assert [step for step, _ in _curve(_events(run), "loss/train")] == [2, 4, 6, 8]  # no step twice


def test_dashboard_runs_with_the_setting_write_events(tmp_path: Path) -> None:
    from dashboard.services.run_manager import RunManager

    manager = RunManager(tmp_path / "runs", max_concurrent=1, threads=1)
    try:
        config = TrainConfig(
            dataset="moons", hidden=[8], blocks=1, batch_size=16, steps=4, eval_every=2, log_every=2,
            toy_points=256, warmup_steps=1, tensorboard=True,
        )  # fmt: skip
        run_id = manager.start(config, name="board")
        deadline = time.monotonic() + 120
        while manager.snapshot(run_id).state not in ("done", "failed"):
            assert time.monotonic() < deadline, "the dashboard run did not finish"
            time.sleep(0.1)
        assert manager.snapshot(run_id).state == "done", manager.snapshot(run_id).message
    finally:
        manager.stop_all(wait_s=30)
    reader = _events(tmp_path / "runs" / "board")
    assert [step for step, _ in _curve(reader, "loss/test")] == [2, 4]
    assert [image.step for image in reader.Images("samples")] == [2, 4]


@dataclass(frozen=True)
class ScoredEvalEvent(EvalEvent):
    """An evaluation that also reports a sample score (as a quality metric would)."""

    sample_score: float | None = None


def test_other_numbers_of_an_evaluation_become_eval_curves(tmp_path: Path) -> None:
    config = TrainConfig(dataset="moons", hidden=[8], blocks=1, toy_points=256, steps=4).validate()
    trainer = SimpleNamespace(config=config, model=build_model(config), step=0)
    logger = TensorBoardLogger(tmp_path, trainer)
    for step, score in [(2, 0.25), (4, 0.5)]:
        logger(
            ScoredEvalEvent(step=step, elapsed=1.0, test_loss=2.0, test_bits_per_dim=None, sample_score=score)
        )
    logger.close()
    reader = _events(tmp_path)
    assert _curve(reader, "eval/sample_score") == [(2, 0.25), (4, 0.5)]
    assert "eval/best" not in reader.Tags()["scalars"]  # a flag, not a curve


def test_the_sample_score_of_an_evaluation_becomes_one_curve_per_number(tmp_path: Path) -> None:
    config = TrainConfig(dataset="moons", hidden=[8], blocks=1, toy_points=256, steps=4).validate()
    trainer = SimpleNamespace(config=config, model=build_model(config), step=0)
    logger = TensorBoardLogger(tmp_path, trainer)
    score = {"recognised": 0.25, "class_entropy_bits": 3.1, "frechet": 40.0, "real": {"recognised": 0.9}}
    logger(EvalEvent(step=2, elapsed=1.0, test_loss=2.0, test_bits_per_dim=None, sample_score=score))
    logger.close()
    reader = _events(tmp_path)
    assert _curve(reader, "eval/sample_score/recognised") == [(2, 0.25)]
    assert _curve(reader, "eval/sample_score/frechet") == [(2, 40.0)]
    assert not [tag for tag in reader.Tags()["scalars"] if "real" in tag]  # the reference is not a curve


def test_without_the_flag_no_event_files(tmp_path: Path) -> None:
    assert cli.main([*TOY, "--steps", "2", "--runs-dir", str(tmp_path), "--run-name", "plain"]) == 0
    assert not list((tmp_path / "plain").glob("events.out.tfevents.*"))
