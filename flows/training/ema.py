"""An exponential moving average of a model's weights, for evaluation and sampling.

After each optimizer step ``average = decay * average + (1 - decay) * weights`` for every floating
parameter and buffer (other buffers, such as actnorm's ``initialized`` flag, are copied). Evaluating
with the average smooths the step-to-step noise of the weights (Polyak and Juditsky 1992; the
evaluation weights of Glow and of most image generative models). The first steps use
``min(decay, (1 + step) / (10 + step))`` so the average is not dominated by the initial weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class WeightAverage:
    """The EMA of ``model``'s state dict (on the model's device); see the module docstring."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must lie in (0, 1), got {decay!r}; 0.999 averages about 1,000 steps")
        self.decay = decay
        self.updates = 0
        self.average: dict[str, Tensor] = {
            name: value.detach().clone() for name, value in model.state_dict().items()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Moves the average towards ``model``'s current weights (call after each optimizer step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            average = self.average[name]
            if average.is_floating_point():
                average.lerp_(value.detach(), 1 - decay)
            else:
                average.copy_(value)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Within the block ``model`` holds the averaged weights; its own come back afterwards."""
        own = {name: value.detach().clone() for name, value in model.state_dict().items()}
        model.load_state_dict(self.average)
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict[str, object]:
        """Tensors and numbers only (loads with ``torch.load(weights_only=True)``)."""
        return {"decay": self.decay, "updates": self.updates, "average": dict(self.average)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.updates = int(state["updates"])  # type: ignore[arg-type]
        average = state["average"]
        assert isinstance(average, dict)
        for name, value in average.items():
            self.average[name].copy_(value)
