"""The held-out test of a training run: the test loss, the best one so far, early stopping and overfitting.

:func:`held_out_loss` averages ``-logProbability`` over the whole test split with fixed dequantization noise,
so evaluations compare exactly; :class:`BestWatch` remembers the best evaluation and says when held-out
bits/dim rose OVERFIT_MARGIN_BITS above their best while training bits/dim fell below their value then.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..data import dequantize
from ..models import Flow
from .config import TrainConfig
from .distributed import DistributedContext, all_reduce_sum
from .events import OverfitEvent

#: Seed of the dequantization noise used by every evaluation, so test numbers compare across evaluations.
EVAL_NOISE_SEED = 1234
#: Held-out bits/dim this far above the best, with training bits/dim below their value then, is overfitting.
OVERFIT_MARGIN_BITS = 0.05


@torch.no_grad()
def held_out_loss(
    model: Flow,
    config: TrainConfig,
    test_data: Tensor,
    test_labels: Tensor | None,
    context: DistributedContext,
    device: torch.device,
    to_model: Callable[[Tensor], Tensor],
) -> float:
    """Mean ``-logProbability`` (nats) over ``test_data`` (flat rows ``[N, n]``), in float32 batches of
    ``config.eval_batch_size``, accumulated in float64; ``log p(x | its class)`` with ``test_labels``.

    The dequantization noise comes from a generator seeded with EVAL_NOISE_SEED at every call. Under
    torchrun the batches are shared out among the processes. ``to_model`` maps rows to the model's
    shape on ``device``.
    """
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    for index, start in enumerate(range(0, len(test_data), config.eval_batch_size)):
        rows = test_data[start : start + config.eval_batch_size]
        x = dequantize(rows, generator) if config.is_image else rows  # noise drawn by every process
        if index % context.world_size != context.rank:
            continue
        if test_labels is None:
            log_prob = model.logProbability(to_model(x))
        else:  # log p(x | its class)
            labels = test_labels[start : start + config.eval_batch_size].to(device)
            log_prob = model.logProbability(to_model(x), labels)
        total += log_prob.double().sum()
        count += len(x)
    return -float(all_reduce_sum(total) / all_reduce_sum(count))


@dataclass
class BestWatch:
    """The best evaluation so far: its test loss (nats), step and training bits/dim, and the evaluations
    since it (for ``config.early_stop``)."""

    best_test_loss: float | None = None
    best_step: int = 0
    best_train_bits: float | None = None  # training bits/dim at the best evaluation
    evals_since_best: int = 0

    def observe(
        self,
        step: int,
        elapsed: float,
        loss: float,
        test_bits: float | None,
        train_bits: float | None,
        bits: Callable[[float], float | None],
    ) -> tuple[bool, OverfitEvent | None]:
        """Takes an evaluation's test ``loss`` (nats) and ``test_bits`` (its bits/dim; None for the toys);
        returns whether it is a new best, and an :class:`OverfitEvent` when it shows overfitting.
        ``bits`` turns nats into bits/dim, for the best loss."""
        improved = math.isfinite(loss) and (self.best_test_loss is None or loss < self.best_test_loss)
        best_bits = None if self.best_test_loss is None else bits(self.best_test_loss)
        if improved:
            self.best_test_loss, self.best_step, self.best_train_bits = loss, step, train_bits
            self.evals_since_best = 0
            return True, None
        self.evals_since_best += 1
        overfit = (
            None not in (test_bits, best_bits, train_bits, self.best_train_bits)
            and test_bits > best_bits + OVERFIT_MARGIN_BITS
            and train_bits < self.best_train_bits
        )
        if not overfit:
            return False, None
        return False, OverfitEvent(
            step=step,
            elapsed=elapsed,
            test_bits_per_dim=test_bits,
            best_test_bits_per_dim=best_bits,
            best_step=self.best_step,
            train_bits_per_dim=train_bits,
            best_train_bits_per_dim=self.best_train_bits,
            message=(
                f"overfitting: held-out {test_bits:.3f} bits/dim is {test_bits - best_bits:.3f} "
                f"above its best ({best_bits:.3f} at step {self.best_step}) while training fell "
                f"{self.best_train_bits - train_bits:.3f} to {train_bits:.3f}; checkpoints/best.pt "
                "keeps the best model"
            ),
        )

    def state_dict(self) -> dict[str, Any]:
        """The four fields, under their own names (a checkpoint's top-level keys)."""
        return {
            "best_test_loss": self.best_test_loss,
            "best_step": self.best_step,
            "best_train_bits": self.best_train_bits,
            "evals_since_best": self.evals_since_best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` from a checkpoint (older ones hold only ``best_test_loss``)."""
        self.best_test_loss = state["best_test_loss"]
        self.best_step = int(state.get("best_step", 0))
        self.best_train_bits = state.get("best_train_bits")
        self.evals_since_best = int(state.get("evals_since_best", 0))
