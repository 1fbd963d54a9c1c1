"""TensorBoard as one more listener of the trainer: a run's curves and sample grids as event files.

``TensorBoardLogger(run_dir, trainer)`` is called with every trainer event, like the run-folder logger,
and writes ``events.out.tfevents.*`` into the run folder itself, so ``tensorboard --logdir runs`` lists
every run (terminal and dashboard alike) under its run id. Tags::

    loss/train, loss/test                  nats, -mean logProbability
    bits_per_dim/train, bits_per_dim/test  images only
    optim/lr, optim/grad_norm
    speed/images_per_sec                   averaged since the last logged step, as in metrics.jsonl
    eval/<name>                            any other number an evaluation reports (e.g. a sample score)
    samples                                the grid of samples.png (a 2D density for toys), per evaluation

Steps are logged every ``log_every`` steps (and the last), as in metrics.jsonl. A resumed run starts
its writer with ``purge_step`` just after the checkpoint's step, so TensorBoard drops what the earlier
session logged after that checkpoint, as :func:`runs.truncate_metrics` does for metrics.jsonl.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

from .events import DoneEvent, EvalEvent, Event, FailEvent, NanEvent, StepEvent
from .images import TOY_SAMPLE_POINTS, sample_image
from .run_logger import TrainerState

INSTALL_HINT = (
    "TensorBoard logging needs the tensorboard package: pip install tensorboard (or flowlab[tensorboard])"
)
#: EvalEvent fields that are not curves of their own (or have their own tag).
_EVAL_SKIP = {"step", "elapsed", "best", "test_loss", "test_bits_per_dim"}


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write (it needs the tensorboard package)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardLogger:
    """Writes a trainer's events as TensorBoard scalars and images into ``run_dir``; ``close()`` at the end
    (a done or fail event closes it too). ImportError with :data:`INSTALL_HINT` without tensorboard."""

    def __init__(self, run_dir: str | Path, trainer: TrainerState) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError(INSTALL_HINT) from error
        self.run_dir = Path(run_dir)
        self.trainer = trainer
        # purge_step: TensorBoard drops earlier events from this step on (what followed the checkpoint)
        self.writer = SummaryWriter(str(self.run_dir), purge_step=trainer.step + 1 if trainer.step else None)
        self._window_images = 0
        self._window_seconds = 0.0
        self._closed = False

    def __call__(self, event: Event) -> None:
        if self._closed:
            return
        if isinstance(event, StepEvent):
            self._step(event)
        elif isinstance(event, EvalEvent):
            self._eval(event)
        elif isinstance(event, NanEvent):
            self._scalar("optim/lr", event.lr, event.step)
        elif isinstance(event, (DoneEvent, FailEvent)):
            self.close()

    def _step(self, event: StepEvent) -> None:
        config = self.trainer.config
        self._window_images += config.batch_size
        self._window_seconds += event.seconds
        step = event.step
        if step % config.log_every and step != config.steps:
            return
        self._scalar("loss/train", event.loss, step)
        self._scalar("bits_per_dim/train", event.bits_per_dim, step)
        self._scalar("optim/lr", event.lr, step)
        self._scalar("optim/grad_norm", event.grad_norm, step)
        self._scalar("speed/images_per_sec", self._window_images / max(self._window_seconds, 1e-9), step)
        self._window_images, self._window_seconds = 0, 0.0

    def _eval(self, event: EvalEvent) -> None:
        step = event.step
        self._scalar("loss/test", event.test_loss, step)
        self._scalar("bits_per_dim/test", event.test_bits_per_dim, step)
        for item in fields(event):  # any other number an evaluation reports, e.g. a sample score
            if item.name in _EVAL_SKIP:
                continue
            value = getattr(event, item.name)
            # a dict of numbers (the sample score: recognised, class_entropy_bits, frechet) is one curve each
            numbers = value.items() if isinstance(value, dict) else [("", value)]
            for key, number in numbers:
                if isinstance(number, (int, float)) and not isinstance(number, bool):
                    self._scalar(f"eval/{item.name}" + (f"/{key}" if key else ""), number, step)
        config = self.trainer.config
        count = config.sample_count if config.is_image else TOY_SAMPLE_POINTS
        picture = sample_image(self.trainer.model, config.is_image, count)  # the grid of samples.png
        self.writer.add_image("samples", picture, step, dataformats="HW")
        self.writer.flush()

    def _scalar(self, tag: str, value: float | None, step: int) -> None:
        if value is not None and math.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        """Flushes and closes the event file (idempotent)."""
        if not self._closed:
            self._closed = True
            self.writer.close()


def tensorboard_logger(run_dir: str | Path | None, trainer: TrainerState) -> TensorBoardLogger | None:
    """A logger when ``trainer.config.tensorboard`` asks for one and there is a run folder, else None."""
    if run_dir is None or not trainer.config.tensorboard:
        return None
    return TensorBoardLogger(run_dir, trainer)
