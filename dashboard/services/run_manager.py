"""Background training for the dashboard: a queue of runs trained in threads through ``flows.training``.

The page scripts never train. They call :class:`RunManager` (one per server process, kept by
``st.cache_resource`` in ``dashboard/services/state.py``) to start, pause, resume and stop runs, and read
:class:`RunSnapshot` copies of a run's progress. Training threads never call Streamlit: they only
append to in-memory buffers under a lock and write the run folder (the same ``runs/<run-id>/``
layout ``main.py`` writes), so closing every browser tab leaves a run training, and a reload finds it.

At most ``max_concurrent`` runs train at once; further starts wait in a FIFO queue with a visible
position. Torch's intra-op threads are capped at ``cpu_count - 1`` so the web server keeps a core.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import re
import shutil
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dashboard.services.threads import training_threads
from flows.evaluation import scorer_for
from flows.limits import MemoryLimitError
from flows.training import (
    ConfigError,
    DoneEvent,
    EvalEvent,
    Event,
    NanEvent,
    NonFiniteLossError,
    RunLogger,
    StepEvent,
    TrainConfig,
    Trainer,
    plan_data,
    runs,
)
from flows.training.checkpoints import check_state, read_checkpoint
from flows.training.factory import check_memory
from flows.training.images import sample_image
from flows.training.tensorboard import TensorBoardLogger, tensorboard_logger

#: Seconds between two fresh sample grids drawn by a training thread.
SAMPLE_INTERVAL_S = 2.0
#: Samples in the live grid of a training image run.
LIVE_SAMPLE_COUNT = 16
#: Points in the live 2D density of a training toy run.
LIVE_TOY_POINTS = 4000
#: Seed of the latents of the live grid, so successive grids show the same latents getting sharper.
LIVE_SAMPLE_SEED = 0
#: Weight of the newest step in the smoothed images/s figure.
THROUGHPUT_SMOOTHING = 0.1
#: Seconds a server shutdown waits for training threads to write their final checkpoint.
SHUTDOWN_WAIT_S = 10.0

#: States of a run this process manages. "queued" waits for a free slot; "stopping" has been asked to stop.
LIVE_STATES = ("queued", "running", "pausing", "paused", "stopping")
FINAL_STATES = ("done", "stopped", "failed")


def default_max_concurrent() -> int:
    """Runs allowed to train at once: one per CUDA device, or 1 on a CPU machine."""
    return max(1, torch.cuda.device_count())


@dataclass(frozen=True)
class RunSnapshot:
    """A consistent copy of one run's progress for the UI (never shared with the training thread)."""

    run_id: str
    path: Path
    config: TrainConfig
    state: str  # queued, running, pausing, paused, stopping, done, stopped, failed
    step: int
    steps: int
    queue_position: int | None  # 1 = next to start; None unless queued
    steps_seen: list[int]  # every step trained in this process, for the curves
    losses: list[float]  # train loss (nats) per step in steps_seen
    eval_steps: list[int]
    test_losses: list[float]  # nats
    images_per_sec: float | None  # smoothed training throughput
    elapsed: float  # seconds trained in total (all sessions of the run)
    eta_seconds: float | None
    samples: Tensor | None  # uint8 image: a grid of digits or a 2D density, from the live model
    samples_step: int | None
    message: str | None  # why it failed, or the last non-finite-loss warning
    note: str | None  # how the data was split (shown beside the run)

    @property
    def is_live(self) -> bool:
        """True while the run is queued, training, paused or stopping."""
        return self.state in LIVE_STATES

    @property
    def fraction_done(self) -> float:
        """Steps done over steps planned, in [0, 1]."""
        return min(1.0, self.step / self.steps) if self.steps else 0.0


@dataclass
class _ManagedRun:
    """The mutable record of a run this process trains; guarded by ``lock``."""

    run_id: str
    path: Path
    config: TrainConfig
    note: str | None
    resume: bool  # continue from checkpoints/last.pt instead of starting at step 0
    state: str = "queued"
    step: int = 0
    steps_seen: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    test_losses: list[float] = field(default_factory=list)
    images_per_sec: float | None = None
    elapsed: float = 0.0
    samples: Tensor | None = None
    samples_step: int | None = None
    message: str | None = None
    thread: threading.Thread | None = None
    resume_event: threading.Event = field(default_factory=threading.Event)  # set = may train
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.resume_event.set()


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
        self._runs: dict[str, _ManagedRun] = {}
        self._queue: list[str] = []
        self._lock = threading.RLock()
        _MANAGERS.add(self)

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
        return self._enqueue(_ManagedRun(path.name, path, config, note, resume=False))

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
        return self._enqueue(_ManagedRun(run_id, path, config, note, resume=True))

    def _enqueue(self, managed: _ManagedRun) -> str:
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
            managed.thread = threading.Thread(
                target=self._train, args=(managed,), name=f"flowlab-train-{managed.run_id}", daemon=True
            )
            managed.thread.start()

    # --- controls -----------------------------------------------------------------------------------

    def _managed(self, run_id: str) -> _ManagedRun:
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
                managed.resume_event.clear()

    def resume(self, run_id: str) -> None:
        """Resumes a paused run."""
        managed = self._managed(run_id)
        managed.resume_event.set()

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
        managed.stop_event.set()
        managed.resume_event.set()  # a paused thread wakes up to stop

    def stop_all(self, wait_s: float = SHUTDOWN_WAIT_S) -> None:
        """Stops every run of this manager and waits up to ``wait_s`` for their final checkpoints."""
        with self._lock:
            run_ids = list(self._runs)
        for run_id in run_ids:
            self.stop(run_id)
        deadline = time.monotonic() + wait_s
        for run_id in run_ids:
            thread = self._runs[run_id].thread
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

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
        if managed is None:
            return None
        with managed.lock:
            state = managed.state
            if state == "running" and not managed.resume_event.is_set():
                state = "pausing"  # asked to pause; the thread stops after its current step
            return RunSnapshot(
                run_id=managed.run_id,
                path=managed.path,
                config=managed.config,
                state=state,
                step=managed.step,
                steps=managed.config.steps,
                queue_position=position,
                steps_seen=list(managed.steps_seen),
                losses=list(managed.losses),
                eval_steps=list(managed.eval_steps),
                test_losses=list(managed.test_losses),
                images_per_sec=managed.images_per_sec,
                elapsed=managed.elapsed,
                eta_seconds=_eta(managed),
                samples=managed.samples,
                samples_step=managed.samples_step,
                message=managed.message,
                note=managed.note,
            )

    def active_ids(self) -> list[str]:
        """Runs training, paused or stopping, then queued runs in queue order."""
        with self._lock:
            active = [
                rid for rid, run in self._runs.items() if run.state in ("running", "paused", "stopping")
            ]
            return active + list(self._queue)

    # --- the training thread ------------------------------------------------------------------------

    def _train(self, managed: _ManagedRun) -> None:
        """Body of a training thread: builds the Trainer and runs it, reporting into ``managed``."""
        logger: RunLogger | None = None
        board: TensorBoardLogger | None = None
        try:
            if managed.resume:
                overrides = {"steps": managed.config.steps, "num_threads": managed.config.num_threads}
                trainer = Trainer.from_run(managed.path, overrides, sample_scorer=scorer_for(managed.config))
            else:
                trainer = Trainer(managed.config, sample_scorer=scorer_for(managed.config))
            logger = RunLogger(managed.path, trainer)
            with managed.lock:
                managed.step = trainer.step
                managed.elapsed = trainer.elapsed
            sampler = _LiveSampler(trainer, managed)
            board = tensorboard_logger(managed.path, trainer)  # None unless the config asks for it
            trainer.run(
                on_event=[
                    logger,
                    *([board] if board is not None else []),
                    lambda event: self._on_event(managed, logger, sampler, event),
                ],
                should_stop=managed.stop_event.is_set,
            )
            sampler.draw(force=True)
        except NonFiniteLossError as error:
            self._fail(managed, str(error))
        except Exception as error:  # the run ends; the UI shows why
            self._fail(managed, f"{type(error).__name__}: {error}")
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
                        managed.state = "stopped" if managed.stop_event.is_set() else "done"
                self._schedule()

    def _fail(self, managed: _ManagedRun, message: str) -> None:
        with managed.lock:
            managed.state = "failed"
            managed.message = message

    def _on_event(self, managed: _ManagedRun, logger: RunLogger, sampler: _LiveSampler, event: Event) -> None:
        """Records one trainer event; blocks while the run is paused (which pauses training)."""
        with managed.lock:
            managed.elapsed = float(event.elapsed or managed.elapsed)
            if isinstance(event, StepEvent):
                managed.step = event.step
                managed.steps_seen.append(event.step)
                managed.losses.append(event.loss)
                previous = managed.images_per_sec
                rate = event.images_per_sec
                managed.images_per_sec = rate if previous is None else _smooth(previous, rate)
            elif isinstance(event, EvalEvent):
                managed.eval_steps.append(event.step)
                managed.test_losses.append(event.test_loss)
            elif isinstance(event, NanEvent):
                managed.message = event.message
            elif isinstance(event, DoneEvent):
                managed.state = "stopped" if event.reason == "stopped" else "done"
        if isinstance(event, StepEvent):
            sampler.draw()
            self._maybe_pause(managed, logger)

    def _maybe_pause(self, managed: _ManagedRun, logger: RunLogger) -> None:
        """Waits in the training thread while the run is paused, with status.json saying so."""
        if managed.resume_event.is_set():
            return
        # status.json first: once the page shows "paused", the file on disk says so too
        logger.set_status("paused")
        with managed.lock:
            managed.state = "paused"
            managed.images_per_sec = None
        managed.resume_event.wait()
        with managed.lock:
            resuming = managed.state == "paused"  # not when a stop woke the thread
        if resuming:
            logger.set_status("running")
            with managed.lock:
                if managed.state == "paused":
                    managed.state = "running"


class _LiveSampler:
    """Draws a fresh sample grid from the training model every SAMPLE_INTERVAL_S, in the training thread."""

    def __init__(self, trainer: Trainer, managed: _ManagedRun) -> None:
        self.trainer = trainer
        self.managed = managed
        self.last_time = -math.inf

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_time < SAMPLE_INTERVAL_S:
            return
        self.last_time = now
        image = live_samples(self.trainer.model, self.trainer.config)
        with self.managed.lock:
            self.managed.samples = image
            self.managed.samples_step = self.trainer.step


def live_samples(model: torch.nn.Module, config: TrainConfig) -> Tensor:
    """uint8 image of a training model's samples: a 4 x 4 grid of digits (two rows of the ten classes for
    a conditional model), or a 2D density for toys."""
    count = LIVE_SAMPLE_COUNT if config.is_image else LIVE_TOY_POINTS
    if config.conditional:
        count = 2 * getattr(model, "num_classes", 10)
    return sample_image(model, config.is_image, count, columns=4, seed=LIVE_SAMPLE_SEED)


def _smooth(previous: float, new: float) -> float:
    return (1 - THROUGHPUT_SMOOTHING) * previous + THROUGHPUT_SMOOTHING * new


def _eta(managed: _ManagedRun) -> float | None:
    """Seconds left at the smoothed throughput (None when unknown or not training)."""
    if managed.state != "running" or not managed.images_per_sec:
        return None
    steps_left = max(0, managed.config.steps - managed.step)
    return steps_left * managed.config.batch_size / managed.images_per_sec


# --- checkpoints in and out ---------------------------------------------------------------------------


UPLOAD_NAME_PATTERN = re.compile(r"[^A-Za-z0-9._-]+")


def read_checkpoint_bytes(data: bytes) -> tuple[dict[str, Any], TrainConfig]:
    """Loads an uploaded checkpoint safely (``torch.load(weights_only=True)``) and checks all of it.

    Its config is checked as if typed on the Train page (:func:`uploaded_config`: the server's own data
    folder, the form's ranges, the memory limit), then every weight's name and shape against the model that
    config builds (on the meta device), before anything is built or written. Returns the state and the
    config; ValueError with a message a user can act on otherwise.
    """
    if not data:
        raise ValueError("the file is empty; pick a checkpoint such as runs/<run-id>/checkpoints/last.pt")
    state = read_checkpoint(data, "this file")
    if "model" not in state or "config" not in state:
        raise ValueError(
            "this file is not a Flow Lab checkpoint: it has no model weights and training config "
            "(expected the checkpoints/last.pt or best.pt of a run)"
        )
    if not isinstance(state["config"], dict):
        raise ValueError("the checkpoint's training config is invalid: it is not a set of named fields")
    try:
        config = uploaded_config(TrainConfig.from_dict(dict(state["config"])))
    except (TypeError, ValueError) as error:
        raise ValueError(f"the checkpoint's training config is invalid: {error}") from None
    check_state(state, config, name="the checkpoint")
    return state, config


#: Upper bounds of the fields the Train page's form bounds (its widgets' max_value), applied to uploads;
#: the lower bounds are TrainConfig.validate's.
UPLOAD_MAXIMA = {
    "blocks": 16,
    "batch_size": 4096,
    "steps": 1_000_000,
    "eval_every": 100_000,
    "warmup_steps": 100_000,
    "seed": 2**31 - 1,
    "lr": 1.0,
    "eval_batch_size": 10_000,
    "checkpoint_every": 1_000_000,
    "log_every": 1_000_000,
    "sample_count": 256,
    "toy_points": 1_000_000,
    "nan_retries": 1000,
}


def uploaded_config(config: TrainConfig) -> TrainConfig:
    """An uploaded checkpoint's config, checked as if a visitor had typed it.

    The server's folders are not the uploader's to choose: ``data_dir`` is reset to the default, and
    ``num_threads`` to the server's; each field bounded on the Train page must lie in that range; the
    model must fit the memory limit. ValueError (one line, naming the field) otherwise.
    """
    config = replace(config, data_dir="", num_threads=0).validate()
    for name, highest in UPLOAD_MAXIMA.items():
        value = getattr(config, name)
        if value > highest:
            raise ValueError(f"{name} must be at most {highest:,}, got {value:,}")
    check_memory(config)
    return config


def import_checkpoint(runs_root: str | Path, data: bytes, file_name: str) -> str:
    """Saves an uploaded checkpoint as a new finished run ``upload-<name>``; returns its run id."""
    state, config = read_checkpoint_bytes(data)
    stem = UPLOAD_NAME_PATTERN.sub("-", Path(file_name).stem).strip("-.") or "checkpoint"
    name = f"upload-{stem[:40]}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = runs.create_run(runs_root, config, name=name)
    try:
        runs.save_checkpoint(runs.checkpoint_path(path, "last"), state)
        runs.write_status(path, "done", step=state["step"], steps=config.steps, message="uploaded")
    except BaseException:  # e.g. a full disk: leave no half-made run folder behind
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path.name


# --- shutdown -------------------------------------------------------------------------------------------

_MANAGERS: weakref.WeakSet[RunManager] = weakref.WeakSet()


@atexit.register
def _stop_all_runs() -> None:
    """On server shutdown, lets each training thread write its checkpoint and a "stopped" status."""
    for manager in list(_MANAGERS):
        manager.stop_all()
