"""The run-folder logger: a trainer's events written into its run folder (layout in runs.py)."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Protocol

import torch

from .config import TrainConfig
from .events import (
    CheckpointEvent,
    DoneEvent,
    EvalEvent,
    Event,
    FailEvent,
    NanEvent,
    OverfitEvent,
    StartEvent,
    StepEvent,
)
from .images import TOY_SAMPLE_POINTS, sample_image, write_png
from .runs import (
    CONFIG_FILE,
    EXAMPLE_FILE,
    METRICS_FILE,
    SAMPLES_FILE,
    MetricsWriter,
    checkpoint_path,
    remove_stale_temp_files,
    save_checkpoint,
    truncate_metrics,
    write_json,
    write_status,
)

STATUS_INTERVAL_S = 2.0  # status.json is rewritten at most this often while running


class TrainerState(Protocol):
    """What :class:`RunLogger` reads from the trainer it records (a :class:`Trainer` has all of it)."""

    config: TrainConfig
    model: torch.nn.Module
    step: int

    def state_dict(self) -> dict[str, Any]: ...


class RunLogger:
    """Persistence as a listener: writes a trainer's events into its run folder.

    ``metrics.jsonl`` gets a line per ``log_every`` steps (throughput averaged since the last line), each
    evaluation and each rejected NaN step; ``status.json`` says running (every STATUS_INTERVAL_S),
    paused, stopped, done or failed; ``samples.png`` is redrawn at each evaluation; checkpoint events
    write ``checkpoints/<which>.pt``. Attaching a logger to a resumed trainer removes the temp files a
    killed writer left, drops the metrics lines after the trainer's step and saves its config.
    ``main.py`` and the dashboard attach one each: ``trainer.run(on_event=[logger, ...])``.
    """

    def __init__(self, run_dir: str | Path, trainer: TrainerState) -> None:
        self.run_dir = Path(run_dir)
        self.trainer = trainer
        self._metrics: MetricsWriter | None = None
        self._window_images = 0
        self._window_seconds = 0.0
        self._status_time = -math.inf
        if (self.run_dir / EXAMPLE_FILE).is_file():
            raise ValueError(
                f"{self.run_dir} is a shipped example and read-only; train a run of your own "
                f"(its command is in {EXAMPLE_FILE})"
            )
        remove_stale_temp_files(self.run_dir)
        truncate_metrics(self.run_dir, trainer.step)
        write_json(self.run_dir / CONFIG_FILE, trainer.config.to_dict())

    def set_status(self, state: str, **details: Any) -> None:
        """Writes status.json with the trainer's step counts and ``details``."""
        trainer = self.trainer
        write_status(self.run_dir, state, step=trainer.step, steps=trainer.config.steps, **details)
        self._status_time = time.monotonic()

    def __call__(self, event: Event) -> None:
        config = self.trainer.config
        if isinstance(event, StartEvent):
            self._metrics = MetricsWriter(self.run_dir / METRICS_FILE)
            self.set_status("running")
        elif isinstance(event, StepEvent):
            self._window_images += config.batch_size
            self._window_seconds += event.seconds
            if event.step % config.log_every == 0 or event.step == config.steps:
                line = event.record()
                line["images_per_sec"] = self._window_images / max(self._window_seconds, 1e-9)
                self._window_images, self._window_seconds = 0, 0.0
                self._write(line)
            if time.monotonic() - self._status_time > STATUS_INTERVAL_S:
                self.set_status("running")
        elif isinstance(event, (NanEvent, EvalEvent, OverfitEvent)):
            self._write(event.record())
            if isinstance(event, EvalEvent):
                with self._evaluation_weights() as model:
                    picture = sample_image(model, config.is_image, self._sample_count())
                write_png(self.run_dir / SAMPLES_FILE, picture)
        elif isinstance(event, CheckpointEvent):
            save_checkpoint(checkpoint_path(self.run_dir, event.which), self.trainer.state_dict())
        elif isinstance(event, DoneEvent):
            self._close()
            self.set_status("stopped" if event.reason == "stopped" else "done", reason=event.reason)
        elif isinstance(event, FailEvent):
            self._close()
            self.set_status(event.state, message=event.message)

    def _evaluation_weights(self) -> contextlib.AbstractContextManager[torch.nn.Module]:
        weights = getattr(self.trainer, "evaluation_weights", None)  # the averaged weights, if any
        return weights() if weights is not None else contextlib.nullcontext(self.trainer.model)

    def _sample_count(self) -> int:
        return self.trainer.config.sample_count if self.trainer.config.is_image else TOY_SAMPLE_POINTS

    def _write(self, line: dict[str, Any]) -> None:
        if self._metrics is not None:
            self._metrics.write(line)

    def _close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
