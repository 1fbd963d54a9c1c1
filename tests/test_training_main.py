"""main.py as a user runs it: a full run, Ctrl-C and exact resume, invalid flags, NaNs, Fashion-MNIST."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from flows import cli, registry
from flows.data import bits_per_dim, dequantize, load_mnist
from flows.training import TrainConfig, list_runs, load_run_model, runs
from flows.training.held_out import EVAL_NOISE_SEED

REPO = Path(__file__).resolve().parents[1]
STEPS = 150
# A tiny model, one thread (the CPU is shared), a metrics line every step.
SMALL = ["--holdout", "1000", "--hidden", "32", "--blocks", "2", "--batch-size", "32", "--threads", "1"]
SMALL += ["--no-progress", "--log-every", "1", "--eval-every", "50", "--checkpoint-every", "50"]
SMALL += ["--eval-batch-size", "500", "--warmup-steps", "10", "--lr", "2e-3"]


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> None:
    """cli.main(["--threads", "1", ...]) sets torch's thread count for this process; put it back after."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _run_main(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "main.py"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _call_main(argv: list[str | Path]) -> int:
    """flows.cli.main (what main.py runs) in this process, exit code either way."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exit_:
        return int(exit_.code)


def _losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in runs.read_metrics(run_dir) if r["kind"] == "step"}


def _evals(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["test_bits_per_dim"] for r in runs.read_metrics(run_dir) if r["kind"] == "eval"}


@pytest.fixture(scope="module")
def finished_run(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted main.py run of STEPS steps on 9,000 real digits (1,000 held out)."""
    runs_dir = tmp_path_factory.mktemp("runs")
    result = _run_main(
        *SMALL, "--steps", STEPS, "--data-dir", mnist_dir, "--runs-dir", runs_dir, "--run-name", "full"
    )
    assert result.returncode == 0, result.stderr
    assert f"finished {STEPS} steps" in result.stdout
    return runs_dir / "full"


def test_a_run_folder_holds_parsable_files_and_a_model_that_reproduces_its_scores(
    finished_run: Path, mnist_dir: Path
) -> None:
    config = runs.read_config(finished_run)
    assert config == TrainConfig(
        holdout=1000, hidden=[32], blocks=2, batch_size=32, num_threads=1, log_every=1, eval_every=50,
        checkpoint_every=50, eval_batch_size=500, warmup_steps=10, lr=2e-3, steps=STEPS,
        data_dir=str(mnist_dir), **registry.get_family("realnvp").preset("cpu"),  # main.py adds the preset
    )  # fmt: skip
    records = [json.loads(line) for line in (finished_run / runs.METRICS_FILE).read_text().splitlines()]
    assert all(set(runs.METRIC_KEYS) <= set(record) for record in records)
    assert sorted(_losses(finished_run)) == list(range(1, STEPS + 1))
    evals = _evals(finished_run)
    assert sorted(evals) == [50, 100, 150] and all(math.isfinite(v) for v in evals.values())
    assert runs.read_status(finished_run)["state"] == "done"
    png = (finished_run / runs.SAMPLES_FILE).read_bytes()
    assert png.startswith(b"\x89PNG") and int.from_bytes(png[16:20], "big") == 8 * 30 + 2  # 8 x 8 digits
    (info,) = list_runs(finished_run.parent)
    assert (info.state, info.step, info.checkpoints) == ("done", STEPS, ["best", "last"])

    held_out = load_mnist(mnist_dir, "test")[0][-1000:].reshape(1000, 784)
    pixels = dequantize(held_out, torch.Generator().manual_seed(EVAL_NOISE_SEED))
    best_step = min(evals, key=evals.get)
    for which, step in (("last", STEPS), ("best", best_step)):
        model, loaded_config = load_run_model(finished_run, which)
        assert loaded_config == config
        assert runs.load_checkpoint(runs.checkpoint_path(finished_run, which))["step"] == step
        with torch.no_grad():
            log_prob = model.logProbability(pixels).double().mean()
        assert float(bits_per_dim(log_prob, 784)) == pytest.approx(evals[step], abs=1e-5)


def test_ctrl_c_writes_a_checkpoint_and_resume_continues_step_for_step(
    finished_run: Path, mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [*SMALL, "--steps", STEPS, "--data-dir", mnist_dir, "--runs-dir", tmp_path, "--run-name", "cut"]
    command = [sys.executable, str(REPO / "main.py"), *map(str, args)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "cut"
    deadline = time.monotonic() + 120
    while not any(step >= 5 for step in _losses(run_dir)) and process.poll() is None:
        assert time.monotonic() < deadline, "main.py did not start training"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    stopped_at = runs.load_checkpoint(runs.checkpoint_path(run_dir, "last"))["step"]
    assert 5 <= stopped_at < STEPS, "the run finished before Ctrl-C arrived"
    assert max(_losses(run_dir)) == stopped_at
    assert f"stopped by SIGINT at step {stopped_at}" in stdout and f"--resume {run_dir}" in stdout
    assert runs.read_status(run_dir)["state"] == "stopped"

    capsys.readouterr()
    assert _call_main(["--resume", run_dir, "--no-progress"]) == 0  # in this process, to save a start-up
    assert f"starting at step {stopped_at} of {STEPS}" in capsys.readouterr().out
    assert _losses(run_dir) == _losses(finished_run)  # every step's loss, bit for bit
    assert _evals(run_dir) == _evals(finished_run)
    assert _call_main(["--resume", run_dir, "--no-progress"]) == 0
    assert f"already reached step {STEPS}" in capsys.readouterr().out
    assert _call_main(["--resume", run_dir, "--steps", STEPS + 10, "--no-progress"]) == 0  # a longer budget
    assert max(_losses(run_dir)) == STEPS + 10 and runs.read_config(run_dir).steps == STEPS + 10


INVALID_FLAGS = [
    (["--hidden", "0"], "hidden layer widths must be positive integers"),
    (["--hidden", "64,-3"], "hidden layer widths must be positive integers, got [64, -3]"),
    (["--hidden", "wide"], "hidden widths must be integers"),
    (["--blocks", "0"], "blocks must be a positive integer"),
    (["--lr", "-0.1"], "lr (learning rate) must be a positive number"),
    (["--weight-decay", "-1"], "weight_decay must be a non-negative number"),
    (["--grad-clip", "-5"], "grad_clip must be a non-negative number"),
    (["--adam-beta2", "0"], "adam_beta2 must lie in (0, 1)"),
    (["--nan-lr-factor", "1.5"], "nan_lr_factor must lie in (0, 1]"),
    (["--steps", "0"], "steps must be a positive integer"),
    (["--steps", "ten"], "argument --steps: invalid int value"),
    (["--batch-size", "0"], "batch_size must be a positive integer"),
    (["--batch-size", "20000"], "batch_size 20000 is larger than the 9000 training samples"),
    (["--holdout", "10000"], "leaves no training images"),
    (["--dataset", "cifar10"], "unknown dataset 'cifar10'"),
    (["--model", "glowy"], "unknown model 'glowy'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--dataset", "moons", "--split", "checkerboard", "--holdout", "0"], "checkerboard split needs images"),
    (["--data-dir", "/nonexistent/mnist"], "mnist test files not found in /nonexistent/mnist"),
    (["--resume", "/nonexistent/run"], "config.json not found"),
    (["--colour", "red"], "unrecognized arguments: --colour red"),
]
if not torch.cuda.is_available():
    INVALID_FLAGS.append((["--device", "cuda"], "CUDA is not available here"))


@pytest.mark.parametrize(("flags", "message"), INVALID_FLAGS, ids=[" ".join(f) for f, _ in INVALID_FLAGS])
def test_invalid_flags_are_rejected_with_one_line_before_any_work(
    flags: list[str], message: str, mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--data-dir", mnist_dir, "--holdout", "1000", "--runs-dir", tmp_path / "runs", *flags]
    assert _call_main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("main.py: error: ")
    assert not (tmp_path / "runs").exists()


def test_the_command_line_itself_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = _run_main("--lr", "-1", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stderr == "main.py: error: lr (learning rate) must be a positive number, got -1.0\n"
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_flags_that_would_change_the_run(
    finished_run: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _call_main(["--resume", finished_run, "--lr", "0.1", "--blocks", "3"]) == 2
    assert "--blocks, --lr cannot change when resuming" in capsys.readouterr().err


def test_a_loss_that_keeps_turning_nan_ends_main_with_exit_1(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = [*SMALL, "--data-dir", mnist_dir, "--runs-dir", tmp_path, "--run-name", "nan", "--steps", "50"]
    assert _call_main([*argv, "--lr", "1e30", "--warmup-steps", "0", "--nan-retries", "2"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the loss was not finite 3 times (more than nan_retries = 2)" in error
    nan_lines = [r for r in runs.read_metrics(tmp_path / "nan") if r["kind"] == "nan"]
    assert [r["nan_count"] for r in nan_lines] == [1, 2, 3]
    assert [r["lr"] for r in nan_lines] == pytest.approx([5e29, 2.5e29, 1.25e29], rel=0.01)
    assert runs.read_status(tmp_path / "nan")["state"] == "failed"


def test_a_2d_toy_trains_from_the_command_line_with_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--dataset", "moons", "--steps", "30", "--hidden", "16", "--blocks", "2", "--threads", "1"]
    assert _call_main([*argv, "--runs-dir", tmp_path, "--run-name", "moons", "--eval-every", "15"]) == 0
    captured = capsys.readouterr()
    assert "step 30: test loss" in captured.out and "finished 30 steps" in captured.out
    assert "30/30" in captured.err  # tqdm's bar
    assert runs.read_status(tmp_path / "moons")["state"] == "done"


def test_fashion_mnist_trains_on_all_60000_images(fashion_mnist_dir: Path, tmp_path: Path) -> None:
    result = _run_main(
        "--dataset", "fashion-mnist", "--data-dir", fashion_mnist_dir, "--steps", "20", "--hidden", "32",
        "--blocks", "2", "--threads", "1", "--runs-dir", tmp_path, "--run-name", "fashion", "--no-progress",
        "--log-every", "1", "--ema-decay", "0",  # the trained weights: an average of 20 steps lags behind
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "60,000 training / 10,000 test samples" in result.stdout
    run_dir = tmp_path / "fashion"
    evals = _evals(run_dir)
    first_batch = next(r for r in runs.read_metrics(run_dir) if r["kind"] == "step")["train_bits_per_dim"]
    assert list(evals) == [20] and evals[20] < first_batch - 1  # it learned something in 20 steps
