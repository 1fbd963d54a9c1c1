"""The dashboard's one background-loop class (dashboard/services/loop.py) and its one shutdown registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dashboard.services.loop import BackgroundLoop

REPO = Path(__file__).resolve().parents[1]


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.01)


def test_pause_holds_the_loop_between_chunks_and_resume_goes_on() -> None:
    calls: list[int] = []
    loop = BackgroundLoop(lambda: calls.append(1) or time.sleep(0.005) or True, name="test-pause")
    loop.start()
    _wait_for(lambda: len(calls) >= 3)
    loop.pause()
    assert loop.pause_requested
    readings = [len(calls)]
    while len(readings) < 2 or readings[-1] != readings[-2]:  # the chunk under way ends, then it waits
        time.sleep(0.2)
        readings.append(len(calls))
        assert len(readings) < 300, "the loop never paused"
    held = len(calls)
    time.sleep(0.2)
    assert len(calls) == held and loop.running
    loop.resume()
    _wait_for(lambda: len(calls) > held + 3)
    loop.stop()
    assert not loop.running and loop.stop_requested


def test_pause_point_inside_work_reports_pause_and_resume_but_not_a_stop() -> None:
    events: list[str] = []
    entered = threading.Event()

    def work() -> bool:  # one long call, as a training run's: it pauses inside
        entered.set()
        while not loop.stop_requested:
            loop.pause_point(
                on_pause=lambda: events.append("paused"), on_resume=lambda: events.append("resumed")
            )
            time.sleep(0.005)
        return False

    loop = BackgroundLoop(work, name="test-pause-point", single_thread=False)
    loop.start()
    entered.wait(10)
    loop.pause()
    _wait_for(lambda: events == ["paused"])
    loop.resume()
    _wait_for(lambda: events == ["paused", "resumed"])
    loop.pause()
    _wait_for(lambda: events == ["paused", "resumed", "paused"])
    loop.stop()  # wakes the waiting thread; a stop is no resume
    assert events == ["paused", "resumed", "paused"] and not loop.running


def test_work_returning_false_ends_the_loop_and_start_runs_it_again() -> None:
    calls: list[int] = []
    loop = BackgroundLoop(lambda: calls.append(1) or len(calls) % 3 != 0, name="test-done")
    loop.start()
    _wait_for(lambda: not loop.running)
    assert len(calls) == 3 and loop.error is None
    loop.start()
    _wait_for(lambda: not loop.running)
    assert len(calls) == 6


SHUTDOWN_SCRIPT = """
import sys, time
from pathlib import Path
from dashboard.playground.run import FlowSettings, PlaygroundRun
from dashboard.services.run_manager import RunManager
from flows.data import make_toy
from flows.training import TrainConfig

root = Path(sys.argv[1])
config = TrainConfig(dataset="moons", hidden=[8], blocks=2, batch_size=16, steps=10**7, eval_every=0,
                     checkpoint_every=0, toy_points=256, warmup_steps=1)
manager = RunManager(root, max_concurrent=1, threads=1)
training = manager.start(config, name="training")
queued = manager.start(config, name="queued")
run = PlaygroundRun(FlowSettings(hidden=(8,), blocks=2, batch_size=32), make_toy("moons", 300, seed=0),
                    make_toy("moons", 100, seed=1))
run.play()
deadline = time.monotonic() + 120
while (manager.snapshot(training).step < 5 or run.steps_done < 5) and time.monotonic() < deadline:
    time.sleep(0.02)
print("steps", manager.snapshot(training).step, run.steps_done, flush=True)
sys.exit(0)  # no stop called: the atexit registry must stop both loops and the queued run
"""


def test_interpreter_exit_stops_dashboard_runs_queued_runs_and_playground_loops(tmp_path: Path) -> None:
    script = tmp_path / "shutdown.py"
    script.write_text(textwrap.dedent(SHUTDOWN_SCRIPT))
    root = tmp_path / "runs"
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(script), str(root)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("steps"), result.stdout
    training = json.loads((root / "training" / "status.json").read_text())
    assert training["state"] == "stopped" and training["step"] >= 5
    assert (root / "training" / "checkpoints" / "last.pt").is_file()  # written during the shutdown
    assert json.loads((root / "queued" / "status.json").read_text())["state"] == "stopped"


def test_the_dashboard_has_one_atexit_registry() -> None:
    users = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "dashboard").rglob("*.py")
        if "atexit" in path.read_text(encoding="utf-8")
    )
    assert users == ["dashboard/services/loop.py"]
