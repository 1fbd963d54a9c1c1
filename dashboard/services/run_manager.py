"""Background training for the dashboard: a queue of runs trained in threads through ``flows.training``.

The page scripts never train. They call :class:`RunManager` (one per server process, kept by
``st.cache_resource`` in ``dashboard/services/state.py``) to start, pause, resume and stop runs, and read
:class:`RunSnapshot` copies of a run's progress (``run_record.py``). Training threads never call
Streamlit: they only append to in-memory buffers under a lock and write the run folder (the same
``runs/<run-id>/`` layout ``main.py`` writes), so closing every browser tab leaves a run training,
and a reload finds it.

At most ``max_concurrent`` runs train at once; further starts wait in a FIFO queue with a visible
position. Torch's intra-op threads are capped at ``cpu_count - 1`` so the web server keeps a core.
Each run trains in a :class:`dashboard.services.loop.BackgroundLoop` (pause, resume and stop are the
loop's); the manager joins the loop module's shutdown registry, so a server shutdown stops every run,
queued ones included, and lets each write its final checkpoint. Live pictures: ``live_samples.py``;
uploaded checkpoints: ``uploads.py``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

from dashboard.services.live_samples import LiveSampler
from dashboard.services.loop import SHUTDOWN_WAIT_S, BackgroundLoop, stop_at_exit
from dashboard.services.run_record import FINAL_STATES, LIVE_STATES, ManagedRun, RunSnapshot
from dashboard.services.threads import training_threads
from dashboard.services.turns import PLAYGROUND_TURNS
from flows.evaluation import SampleScorer, scorer_for
from flows.limits import MemoryLimitError
from flows.training import (
    ConfigError,
    Event,
    NonFiniteLossError,
    RunLogger,
    StepEvent,
    TrainConfig,
    Trainer,
    plan_data,
    runs,
)
from flows.training.factory import check_memory
from flows.training.tensorboard import TensorBoardLogger, tensorboard_logger


def default_max_concurrent() -> int:
    """Runs allowed to train at once: one per CUDA device, or 1 on a CPU machine."""
    return max(1, torch.cuda.device_count())


class RunManager:
    """Starts, queues, pauses, resumes and stops training runs in background threads.

    Args:
        runs_root: the runs folder (``runs/`` by default; the one ``main.py`` writes).
        max_concurrent: runs allowed to train at once; later starts queue.
        threads: torch intra-op threads while training (``training_threads()`` by default).
    """

    def __init__(self, runs_root: str | Path, max_concurrent: int | None = None, threads: int | None = None):
        self.runs_root = Path(runs_root)
        self.max_concurrent = max_concurrent if max_concurrent is not None else default_max_concurrent()
        if not isinstance(self.max_concurrent, int) or self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be a positive integer, got {self.max_concurrent!r}")
        self.threads = threads if threads is not None else training_threads()
        self._runs: dict[str, ManagedRun] = {}
        self._queue: list[str] = []
        self._lock = threading.RLock()
        stop_at_exit(self)

    # --- starting -----------------------------------------------------------------------------------

    def prepare_config(self, config: TrainConfig) -> tuple[TrainConfig, str | None]:
        """The config a dashboard run trains with, and a note on its data.

        Caps torch threads, and for images picks the folder and the train/test split from the files on
        disk, as ``main.py`` does (:func:`flows.training.plan_data`). ConfigError naming the field when
        it cannot train.
        """
        config, plan = plan_data(replace(config, num_threads=self.threads).validate())
        try:  # refuses, before any folder exists, a model that would exhaust the server's memory
            check_memory(config)
        except MemoryLimitError as error:
            raise ConfigError("hidden", str(error)) from None
        if plan is None:
            return config, None
        if plan.problem:
            raise ConfigError("dataset", plan.problem)
        return config, plan.note

    def start(self, config: TrainConfig, name: str | None = None) -> str:
        """Creates a run folder and trains it now, or queues it; returns the run id."""
        config, note = self.prepare_config(config)
        path = runs.create_run(self.runs_root, config, name)
        return self._enqueue(ManagedRun(path.name, path, config, note, resume=False))

    def continue_run(self, run_id: str, steps: int | None = None) -> str:
        """Trains a stopped, interrupted or finished run on from checkpoints/last.pt (to ``steps``)."""
        with self._lock:
            managed = self._runs.get(run_id)
            if managed is not None and managed.state in LIVE_STATES:
                raise ValueError(f"run {run_id} is already {managed.state}")
        path = self.runs_root / run_id
        status = runs.read_status(path)
        state = runs.effective_state(status)
        if state in ("running", "paused"):
            raise ValueError(
                f"run {run_id} is {state} in another process (pid {status.get('pid')}); stop it there"
            )
        saved = runs.read_config(path)
        config = saved if steps is None else saved.resumed({"steps": steps})
        config, note = self.prepare_config(replace(config, holdout=0))
        if config.holdout != saved.holdout:
            raise ValueError(
                f"run {run_id} was trained on a different split of the data than the files on disk"
            )
        return self._enqueue(ManagedRun(run_id, path, config, note, resume=True))

    def _enqueue(self, managed: ManagedRun) -> str:
        managed.background = BackgroundLoop(
            lambda: self._train(managed),
            name=f"flowlab-train-{managed.run_id}",
            single_thread=False,
            # On the CPU, a run takes fair turns (one per step) with the playgrounds' training
            turns=PLAYGROUND_TURNS
            if managed.config.device == "cpu" or not torch.cuda.is_available()
            else None,
        )
        with self._lock:
            self._runs[managed.run_id] = managed
            self._queue.append(managed.run_id)
            self._schedule()
            if managed.run_id in self._queue:
                # Waiting for a slot: status.json says so too, written under the lock, so before the
                # thread that later trains the run writes "running".
                step = (runs.read_status(managed.path) or {}).get("step", 0)
                runs.write_status(managed.path, "queued", step=step, steps=managed.config.steps)
        return managed.run_id

    def set_max_concurrent(self, value: int) -> None:
        """Changes how many runs may train at once; queued runs start if slots opened."""
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"runs at once must be a positive integer, got {value!r}")
        with self._lock:
            self.max_concurrent = value
            self._schedule()

    def _active_count(self) -> int:
        return sum(1 for run in self._runs.values() if run.state in ("running", "paused", "stopping"))

    def _schedule(self) -> None:
        """Starts queued runs while slots are free (caller holds ``self._lock``)."""
        while self._queue and self._active_count() < self.max_concurrent:
            managed = self._runs[self._queue.pop(0)]
            with managed.lock:
                managed.state = "running"
            managed.loop.start()

    # --- controls -----------------------------------------------------------------------------------

    def _managed(self, run_id: str) -> ManagedRun:
        with self._lock:
            managed = self._runs.get(run_id)
        if managed is None:
            raise ValueError(f"run {run_id} is not trained by this dashboard; stop it where it was started")
        return managed

    def pause(self, run_id: str) -> None:
        """Pauses a training run after its current step (the thread waits; nothing is lost)."""
        managed = self._managed(run_id)
        with managed.lock:
            if managed.state == "running":
                managed.loop.pause()

    def resume(self, run_id: str) -> None:
        """Resumes a paused run."""
        self._managed(run_id).loop.resume()

    def stop(self, run_id: str) -> None:
        """Stops a run: a queued run leaves the queue; a training run ends after this step (checkpointed)."""
        managed = self._managed(run_id)
        with self._lock:
            if run_id in self._queue:
                self._queue.remove(run_id)
                with managed.lock:
                    managed.state = "stopped"
                runs.write_status(managed.path, "stopped", step=managed.step, steps=managed.config.steps)
                return
        with managed.lock:
            if managed.state in ("running", "paused"):
                managed.state = "stopping"
        managed.loop.request_stop()  # a paused thread wakes up to stop

    def request_stop(self) -> None:
        """Stops every run of this manager without waiting (queued runs leave the queue)."""
        for run_id in self.managed_ids():
            self.stop(run_id)

    def join(self, timeout: float | None = None) -> None:
        """Waits up to ``timeout`` seconds in all for the training threads to end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            loops = [managed.loop for managed in self._runs.values()]
        for loop in loops:
            loop.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def stop_all(self, wait_s: float = SHUTDOWN_WAIT_S) -> None:
        """Stops every run of this manager and waits up to ``wait_s`` for their final checkpoints."""
        self.request_stop()
        self.join(wait_s)

    # --- reading ------------------------------------------------------------------------------------

    def managed_ids(self) -> list[str]:
        """Ids of the runs this process has trained or queued, oldest first."""
        with self._lock:
            return list(self._runs)

    def is_managed(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    def snapshot(self, run_id: str) -> RunSnapshot | None:
        """A copy of a managed run's progress, or None if this process does not train it."""
        with self._lock:
            managed = self._runs.get(run_id)
            position = self._queue.index(run_id) + 1 if run_id in self._queue else None
        return None if managed is None else managed.snapshot(position)

    def active_ids(self) -> list[str]:
        """Runs training, paused or stopping, then queued runs in queue order."""
        with self._lock:
            active = [
                rid for rid, run in self._runs.items() if run.state in ("running", "paused", "stopping")
            ]
            return active + list(self._queue)

    # --- the training thread ------------------------------------------------------------------------

    def _train(self, managed: ManagedRun) -> bool:
        """Body of a training thread: builds the Trainer and runs it, reporting into ``managed``; False
        (its loop's work is done after one call)."""
        loop = managed.loop
        logger: RunLogger | None = None
        board: TensorBoardLogger | None = None
        try:
            if managed.resume:
                overrides = {"steps": managed.config.steps, "num_threads": managed.config.num_threads}
                trainer = Trainer.from_run(managed.path, overrides, sample_scorer=_scorer(managed))
            else:
                trainer = Trainer(managed.config, sample_scorer=_scorer(managed))
            logger = RunLogger(managed.path, trainer)
            with managed.lock:
                managed.step = trainer.step
                managed.elapsed = trainer.elapsed
            sampler = LiveSampler(trainer, managed.show_samples)
            board = tensorboard_logger(managed.path, trainer)  # None unless the config asks for it
            trainer.run(
                on_event=[
                    logger,
                    *([board] if board is not None else []),
                    lambda event: self._on_event(managed, logger, sampler, event),
                ],
                should_stop=lambda: loop.stop_requested,
            )
            sampler.draw(force=True)
        except NonFiniteLossError as error:
            managed.fail(str(error))
        except Exception as error:  # the run ends; the UI shows why
            managed.fail(f"{type(error).__name__}: {error}")
            with contextlib.suppress(Exception):
                if logger is not None:
                    logger.set_status("failed", message=str(error))
                else:
                    runs.write_status(
                        managed.path, "failed", step=0, steps=managed.config.steps, message=str(error)
                    )
        finally:
            if board is not None:
                board.close()
            with self._lock:
                with managed.lock:
                    if managed.state not in FINAL_STATES:
                        managed.state = "stopped" if loop.stop_requested else "done"
                self._schedule()
        return False

    def _on_event(self, managed: ManagedRun, logger: RunLogger, sampler: LiveSampler, event: Event) -> None:
        """Records one trainer event; blocks while the run is paused (which pauses training)."""
        managed.record(event)
        if isinstance(event, StepEvent):
            sampler.draw()
            self._maybe_pause(managed, logger)

    def _maybe_pause(self, managed: ManagedRun, logger: RunLogger) -> None:
        """Waits in the training thread while the run is paused, with status.json saying so."""

        def pausing() -> None:
            # status.json first: once the page shows "paused", the file on disk says so too
            logger.set_status("paused")
            with managed.lock:
                managed.state = "paused"
                managed.images_per_sec = None

        def resuming() -> None:  # not called when a stop woke the thread
            logger.set_status("running")
            with managed.lock:
                if managed.state == "paused":
                    managed.state = "running"

        managed.loop.pause_point(on_pause=pausing, on_resume=resuming)


def _scorer(managed: ManagedRun) -> SampleScorer | None:
    """The run's sample scorer; while it trains its judge (once per dataset), the run says so."""
    return scorer_for(managed.config, on_progress=managed.set_activity)
