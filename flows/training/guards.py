"""What keeps training finite: gradient clipping, and the last good state a rejected step returns to."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


def clip_gradients(model: nn.Module, max_norm: float) -> float:
    """The global gradient norm; scales the gradients to ``max_norm`` (0: never) when it is exceeded.

    The same result as ``torch.nn.utils.clip_grad_norm_``, which also multiplies every gradient by
    1.0 when the norm is under the limit: one more pass over all of them (113 MiB for the reference
    RealNVP) that this skips. A non-finite norm leaves them as they are: that step is rejected.
    """
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    total_norm = torch.nn.utils.get_total_norm(gradients)
    norm = float(total_norm)
    # clip_grad_norm_ scales by max_norm / (norm + 1e-6) whenever that is below 1
    if max_norm > 0 and math.isfinite(norm) and norm + 1e-6 > max_norm:
        torch.nn.utils.clip_grads_with_norm_(model.parameters(), max_norm, total_norm)
    return norm


def take_snapshot(step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """An in-memory copy of the weights and optimizer state at ``step``."""
    return {
        "step": step,
        "model": {name: value.detach().clone() for name, value in model.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
    }


def restore_snapshot(snapshot: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Loads a :func:`take_snapshot` back, leaving the snapshot intact for a later restore."""
    model.load_state_dict(snapshot["model"])
    # load_state_dict may keep the given tensors, so hand it a copy and keep the snapshot intact.
    optimizer.load_state_dict(copy.deepcopy(snapshot["optimizer"]))
