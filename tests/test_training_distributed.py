"""torchrun: two processes with DistributedDataParallel match one process with the same global batch."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flows.training import runs

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--holdout", "1000", "--hidden", "32", "--blocks", "2", "--batch-size", "32", "--steps", "20"]
ARGS += ["--warmup-steps", "0", "--lr", "2e-3", "--threads", "1", "--no-progress", "--log-every", "1"]
ARGS += ["--eval-every", "10", "--eval-batch-size", "300"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _step_losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in runs.read_metrics(run_dir) if r["kind"] == "step"]


def _test_scores(run_dir: Path) -> list[float]:
    return [r["test_bits_per_dim"] for r in runs.read_metrics(run_dir) if r["kind"] == "eval"]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_torchrun_processes_match_one_process_with_the_same_global_batch(
    mnist_dir: Path, tmp_path: Path
) -> None:
    common = [*ARGS, "--data-dir", str(mnist_dir), "--runs-dir", str(tmp_path)]
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
    ]
    launcher += ["--master_addr=127.0.0.1"]
    two = subprocess.run(
        [*launcher, str(REPO / "main.py"), *common, "--run-name", "two"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 processes, global batch 32" in two.stdout
    assert two.stdout.count("starting at step 0") == 1  # rank 0 alone reports and writes
    one = subprocess.run(
        [sys.executable, str(REPO / "main.py"), *common, "--run-name", "one"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]

    one_losses, two_losses = _step_losses(tmp_path / "one"), _step_losses(tmp_path / "two")
    assert len(one_losses) == len(two_losses) == 20
    assert two_losses == pytest.approx(one_losses, rel=1e-5, abs=1e-3)
    assert _test_scores(tmp_path / "two") == pytest.approx(_test_scores(tmp_path / "one"), abs=1e-5)
    one_state = runs.load_checkpoint(runs.checkpoint_path(tmp_path / "one"))
    two_state = runs.load_checkpoint(runs.checkpoint_path(tmp_path / "two"))
    assert two_state["step"] == one_state["step"] == 20
    assert torch.equal(two_state["rng"]["data"], one_state["rng"]["data"])  # same global batches drawn
    for name, value in one_state["model"].items():
        torch.testing.assert_close(two_state["model"][name], value, rtol=1e-4, atol=1e-4)
