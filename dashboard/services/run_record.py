"""What the dashboard knows of a run it trains: the record its training thread writes under a lock
(:class:`ManagedRun`), and the copy a page reads (:class:`RunSnapshot`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from dashboard.services.loop import BackgroundLoop
from flows.training import DoneEvent, EvalEvent, Event, NanEvent, StepEvent, TrainConfig

#: Weight of the newest step in the smoothed images/s figure.
THROUGHPUT_SMOOTHING = 0.1

#: States of a run this process manages. "queued" waits for a free slot; "stopping" has been asked to stop.
LIVE_STATES = ("queued", "running", "pausing", "paused", "stopping")
FINAL_STATES = ("done", "stopped", "failed")


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
    activity: str | None = None  # what it does besides training steps now (e.g. training the judge)

    @property
    def is_live(self) -> bool:
        """True while the run is queued, training, paused or stopping."""
        return self.state in LIVE_STATES

    @property
    def fraction_done(self) -> float:
        """Steps done over steps planned, in [0, 1]."""
        return min(1.0, self.step / self.steps) if self.steps else 0.0


@dataclass
class ManagedRun:
    """The mutable record of a run this process trains; every field is guarded by ``lock``."""

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
    activity: str | None = None  # what the run does besides training steps now (the judge's first training)
    background: BackgroundLoop | None = None  # trains the run; set by the run manager when it queues it
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def loop(self) -> BackgroundLoop:
        """The background loop that trains this run."""
        assert self.background is not None, "a managed run gets its loop when it is queued"
        return self.background

    def record(self, event: Event) -> None:
        """Adds one trainer event to the record (the curves, throughput, warnings, the final state)."""
        with self.lock:
            self.elapsed = float(event.elapsed or self.elapsed)
            if isinstance(event, StepEvent):
                self.step = event.step
                self.steps_seen.append(event.step)
                self.losses.append(event.loss)
                previous, rate = self.images_per_sec, event.images_per_sec
                self.images_per_sec = rate if previous is None else _smooth(previous, rate)
            elif isinstance(event, EvalEvent):
                self.activity = None
                self.eval_steps.append(event.step)
                self.test_losses.append(event.test_loss)
            elif isinstance(event, NanEvent):
                self.message = event.message
            elif isinstance(event, DoneEvent):
                self.state = "stopped" if event.reason == "stopped" else "done"

    def show_samples(self, image: Tensor, step: int) -> None:
        """The newest live picture, drawn from the model at ``step``."""
        with self.lock:
            self.samples, self.samples_step = image, step

    def set_activity(self, message: str | None) -> None:
        """What the run is busy with between steps (shown until its next evaluation ends)."""
        with self.lock:
            self.activity = message

    def fail(self, message: str) -> None:
        with self.lock:
            self.state, self.message = "failed", message

    def snapshot(self, queue_position: int | None) -> RunSnapshot:
        """A copy of the record; a running run asked to pause reads "pausing" until its thread waits."""
        with self.lock:
            state = self.state
            if state == "running" and self.loop.pause_requested:
                state = "pausing"  # the thread pauses after its current step
            return RunSnapshot(
                run_id=self.run_id,
                path=self.path,
                config=self.config,
                state=state,
                step=self.step,
                steps=self.config.steps,
                queue_position=queue_position,
                steps_seen=list(self.steps_seen),
                losses=list(self.losses),
                eval_steps=list(self.eval_steps),
                test_losses=list(self.test_losses),
                images_per_sec=self.images_per_sec,
                elapsed=self.elapsed,
                eta_seconds=self._eta(),
                samples=self.samples,
                samples_step=self.samples_step,
                message=self.message,
                note=self.note,
                activity=self.activity,
            )

    def _eta(self) -> float | None:
        """Seconds left: of the time budget, or at the smoothed throughput (None when unknown or not
        training)."""
        if self.state != "running":
            return None
        if self.config.minutes:
            return max(0.0, self.config.minutes * 60 - self.elapsed)
        if not self.images_per_sec:
            return None
        steps_left = max(0, self.config.steps - self.step)
        return steps_left * self.config.batch_size / self.images_per_sec


def _smooth(previous: float, new: float) -> float:
    return (1 - THROUGHPUT_SMOOTHING) * previous + THROUGHPUT_SMOOTHING * new
