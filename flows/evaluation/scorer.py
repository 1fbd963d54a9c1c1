"""The sample score at every evaluation: a callable the trainer calls with the model it evaluates."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .judge import Judge, load_judge

if TYPE_CHECKING:
    from ..training.config import TrainConfig

#: Temperature of the scored samples: z = loc + T (z0 - loc), the issue's reference setting.
SCORE_TEMPERATURE = 0.7
#: Seed of the scored samples' latents, so successive evaluations score the same latents.
SCORE_SEED = 0
#: Set (to anything but "" or "0") to leave the score out: the test suite does, as training the judge
#: takes most of a minute.
DISABLE_ENV = "FLOWLAB_NO_SAMPLE_SCORE"


class SampleScorer:
    """``scorer(model) -> dict``: the judge's score of ``count`` samples at SCORE_TEMPERATURE, with
    ``"real"``, the same score of as many held-out real images, and ``"temperature"``.

    The judge is loaded (trained the first time) on the first call, or given as ``judge``.
    """

    def __init__(
        self,
        dataset: str,
        data_dir: str | Path | None,
        count: int,
        judge: Judge | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        if count < 2:
            raise ValueError(f"count must be at least 2 (a Frechet distance needs two images), got {count}")
        self.dataset, self.data_dir, self.count = dataset, data_dir, count
        self.judge = judge
        self.on_progress = on_progress

    def __call__(self, model: nn.Module) -> dict[str, Any]:
        if self.judge is None:  # trained on first use: with gradients, whatever the caller's grad mode
            self.judge = load_judge(self.dataset, self.data_dir, on_progress=self.on_progress)
        with torch.no_grad():
            return self._score(model)

    def _score(self, model: nn.Module) -> dict[str, Any]:
        prior = model.prior
        parameter = next(model.parameters(), None)
        devices = [parameter.device] if parameter is not None and parameter.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(SCORE_SEED)
            z = prior.sample(self.count)
        loc = getattr(prior, "loc", torch.zeros((), device=z.device))
        z = loc + SCORE_TEMPERATURE * (z - loc)
        if getattr(model, "conditional", False):  # class-conditional: every class in turn
            labels = torch.arange(self.count, device=z.device) % model.num_classes
            images = model.forward(z, labels)[0]
        else:
            images = model.forward(z)[0]
        score = self.judge.score(images.float().cpu()).to_dict()
        score["temperature"] = SCORE_TEMPERATURE
        score["real"] = {
            key: value
            for key, value in self.judge.real_score(self.count).to_dict().items()
            if key != "class_counts"
        }
        return score


def scorer_for(config: TrainConfig, on_progress: Callable[[str], None] | None = None) -> SampleScorer | None:
    """The scorer a config asks for (``score_samples`` > 0, image data), or None; None as well when
    ``$FLOWLAB_NO_SAMPLE_SCORE`` is set."""
    if not config.is_image or not config.score_samples or os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    return SampleScorer(
        config.dataset, config.resolved_data_dir(), config.score_samples, on_progress=on_progress
    )
