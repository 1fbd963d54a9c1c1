"""Live pictures of a training run: a fresh sample grid (images) or 2D density (toys) every few seconds,
drawn in the training thread from the model being trained."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import Tensor

from flows.training import TrainConfig, Trainer
from flows.training.images import sample_image

#: Seconds between two fresh sample grids drawn by a training thread.
SAMPLE_INTERVAL_S = 2.0
#: Samples in the live grid of a training image run.
LIVE_SAMPLE_COUNT = 16
#: Points in the live 2D density of a training toy run.
LIVE_TOY_POINTS = 4000
#: Seed of the latents of the live grid, so successive grids show the same latents getting sharper.
LIVE_SAMPLE_SEED = 0


def live_samples(model: torch.nn.Module, config: TrainConfig) -> Tensor:
    """uint8 image of a training model's samples: a 4 x 4 grid of digits (two rows of the ten classes for
    a conditional model), or a 2D density for toys."""
    count = LIVE_SAMPLE_COUNT if config.is_image else LIVE_TOY_POINTS
    if config.conditional:
        count = 2 * getattr(model, "num_classes", 10)
    return sample_image(model, config.is_image, count, columns=4, seed=LIVE_SAMPLE_SEED)


class LiveSampler:
    """Draws :func:`live_samples` of a trainer's model at most every SAMPLE_INTERVAL_S (in its thread)
    and hands each picture and its step to ``deliver(image, step)``."""

    def __init__(self, trainer: Trainer, deliver: Callable[[Tensor, int], None]) -> None:
        self.trainer = trainer
        self.deliver = deliver
        self.last_time = -math.inf

    def draw(self, force: bool = False) -> None:
        """A fresh picture, unless one was drawn less than SAMPLE_INTERVAL_S ago (``force``: always)."""
        now = time.monotonic()
        if not force and now - self.last_time < SAMPLE_INTERVAL_S:
            return
        self.last_time = now
        self.deliver(live_samples(self.trainer.model, self.trainer.config), self.trainer.step)
