"""main.py never prints a traceback for a user error: each bad input ends in one line and a non-zero exit."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from flows import cli
from flows.training import runs

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "moons", "--hidden", "8", "--blocks", "1", "--batch-size", "16", "--toy-points", "64"]
TINY += ["--eval-every", "0", "--threads", "1", "--no-progress", "--steps", "3"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> None:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def call(argv: list[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """flows.cli.main in this process: the exit code and stderr's lines (an exception fails the test)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err.splitlines()


def assert_one_line(code: int, lines: list[str], *words: str, expected_code: int = 2) -> str:
    assert code == expected_code, lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("main.py: error: ")
    assert "Traceback" not in line and "\x1b" not in line and "weights_only" not in line
    for word in words:
        assert word in line, line
    return line


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs_dir = tmp_path_factory.mktemp("runs")
    assert cli.main([*TINY, "--runs-dir", str(runs_dir), "--run-name", "base"]) == 0
    return runs_dir / "base"


def copy_run(base_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    return run


class Payload:
    """Unpickling this would run code (creating a marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 4


def _state_with(base_run: Path, **changes: object) -> bytes:
    state = runs.load_checkpoint(runs.checkpoint_path(base_run))
    state.update(changes)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _other_architecture(base_run: Path) -> bytes:
    state = runs.load_checkpoint(runs.checkpoint_path(base_run))
    state["model"] = {k: torch.zeros(*[s + 1 for s in v.shape]) for k, v in state["model"].items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


BAD_CHECKPOINTS = {
    "empty": (lambda run, marker: b"", "it is empty"),
    "random bytes": (lambda run, marker: os.urandom(4096), "does not start like one"),
    "pickle payload": (lambda run, marker: pickle.dumps(Payload(marker)), "never unpickled"),
    "a list": (lambda run, marker: _torch_bytes([1, 2]), "holds a list"),
    "other architecture": (lambda run, marker: _other_architecture(run), "another architecture"),
    "safetensors": (lambda run, marker: _safetensors(), "safetensors file"),
    "step abc": (lambda run, marker: _state_with(run, step="abc"), '"step" must be a non-negative integer'),
    "step list": (lambda run, marker: _state_with(run, step=[1, 2]), '"step" must be a non-negative integer'),
    "no optimizer": (lambda run, marker: _state_with(run, optimizer=[]), '"optimizer"'),
}


def _torch_bytes(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_resume_from_a_bad_checkpoint_is_one_line(
    case: str, base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, words = BAD_CHECKPOINTS[case]
    run = copy_run(base_run, tmp_path)
    marker = tmp_path / "payload-ran"
    runs.checkpoint_path(run).write_bytes(make(base_run, str(marker)))
    code, lines = call(["--resume", run, "--steps", "6"], capsys)
    assert_one_line(code, lines, "last.pt", words)
    assert not marker.exists()  # no pickle payload ran
    assert runs.read_status(run) == runs.read_status(base_run) or runs.read_status(run)["state"] != "running"


def test_a_bad_run_name_is_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = call([*TINY, "--runs-dir", tmp_path / "runs", "--run-name", "../../etc/evil"], capsys)
    assert_one_line(code, lines, "run name", "letters, digits")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _unusable_folder(tmp_path: Path, name: str) -> Path:
    """A folder this process cannot write: read-only for a normal user; for root (who ignores
    permissions) a plain file in the folder's place, which fails the same way (an OSError)."""
    path = tmp_path / name
    if IS_ROOT:
        path.write_text("not a folder")
    else:
        path.mkdir()
        path.chmod(0o500)
    return path


def test_a_runs_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_dir = _unusable_folder(tmp_path, "runs")
    code, lines = call([*TINY, "--runs-dir", runs_dir / "inner"], capsys)
    assert_one_line(code, lines, "cannot use", "--runs-dir")


def test_a_read_only_checkpoints_folder_fails_before_training(
    base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(base_run, tmp_path)
    shutil.rmtree(run / runs.CHECKPOINT_DIR)
    _unusable_folder(run, runs.CHECKPOINT_DIR)
    code, lines = call(["--resume", run, "--steps", "500"], capsys)
    assert_one_line(code, lines, "cannot use", "checkpoints")
    assert not any(r["step"] > 3 for r in runs.read_metrics(run) if r["kind"] == "step")  # nothing trained


def test_an_unreadable_data_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        if IS_ROOT:  # root reads anything: a folder where the IDX file belongs is unreadable to all
            (data / name).mkdir()
        else:
            (data / name).write_bytes(b"")
            (data / name).chmod(0)
    args = ["--dataset", "mnist", "--holdout", "100", "--data-dir", data, "--runs-dir", tmp_path / "runs"]
    code, lines = call(args, capsys)
    assert_one_line(code, lines, str(data))


def test_ctrl_c_before_training_is_one_line_and_leaves_no_created_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.Trainer, "__init__", interrupted)  # Ctrl-C while the model is being built
    code, lines = call([*TINY, "--runs-dir", tmp_path / "runs", "--run-name", "early"], capsys)
    assert_one_line(code, lines, "interrupted before training started", "--resume", expected_code=130)
    assert runs.read_status(tmp_path / "runs" / "early")["state"] == "stopped"


@pytest.mark.parametrize("delay_s", [0.3, 0.45, 0.7, 1.0, 1.5])
def test_ctrl_c_during_start_up_of_the_real_command(tmp_path: Path, delay_s: float) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "main.py"),
            *TINY,
            "--steps",
            "100000",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay_s)  # importing torch and the library, or building the model
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    # 130 with one line; -SIGINT only if the signal beat the interpreter's own start (no output at all).
    assert process.returncode in (130, -signal.SIGINT), stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    if process.returncode == 130:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert (len(lines) == 1 and "interrupted" in lines[0]) or "stopped by SIGINT" in stdout, stderr
    for info in runs.list_runs(tmp_path / "runs"):
        assert info.state != "created"


def test_a_ctrl_c_swallowed_during_start_up_still_stops_before_training() -> None:
    stop = cli.StopRequest()
    stop.install()
    try:
        try:  # library code that catches the KeyboardInterrupt (torch's C start-up can)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass
        with pytest.raises(KeyboardInterrupt):
            stop.begin_training()
    finally:
        stop.uninstall()
    assert stop.signal == signal.SIGINT


def test_while_training_the_first_signal_asks_to_stop_and_the_second_aborts() -> None:
    stop = cli.StopRequest()
    stop.install()
    try:
        stop.begin_training()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
    finally:
        stop.uninstall()
    assert stop.signal == signal.SIGTERM
