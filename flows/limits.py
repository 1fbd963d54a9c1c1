"""Memory a model needs to train, estimated before any weight is allocated, and the limit it must fit.

The estimate builds the model on PyTorch's ``meta`` device (shapes only, no storage), so it works for
every flow family whatever its layers, and runs one training forward pass there to measure the tensors
autograd saves for the backward pass:

    bytes = parameters * 4 B * (weights + gradients + Adam's two moments + the trainer's last-good
            copy of the weights and moments) + the tensors saved for backward by one batch

The limit is ``$FLOWLAB_MEMORY_LIMIT_GB`` (GiB), else half of this machine's RAM.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .infra import positive_env_number

MEMORY_LIMIT_ENV = "FLOWLAB_MEMORY_LIMIT_GB"
#: Copies of every parameter a training run holds: weights, gradients, Adam's two moments, and the
#: trainer's snapshot of weights and moments (restored after a NaN loss).
TRAINING_COPIES = 7
#: Used when the machine's RAM cannot be read (e.g. no ``os.sysconf``).
FALLBACK_LIMIT_BYTES = 4 * 2**30
GIB = 2**30


class MemoryLimitError(ValueError):
    """A model would need more memory than the limit; ``str(error)`` is one line with both figures."""


@dataclass(frozen=True)
class MemoryEstimate:
    """What training a model needs, from its parameter count and one batch's saved activations."""

    parameters: int  # trainable and frozen parameters
    bytes_per_value: int  # 4 for float32
    activation_bytes: int  # tensors autograd keeps for backward, for one training batch
    copies: int = TRAINING_COPIES  # copies of the parameters held (1 to only build and run the model)

    @property
    def state_bytes(self) -> int:
        """Weights, and when training their gradients, optimizer moments and the trainer's snapshot."""
        return self.parameters * self.bytes_per_value * self.copies

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.activation_bytes


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; binary units up to TiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def memory_limit_bytes() -> int:
    """``$FLOWLAB_MEMORY_LIMIT_GB`` GiB, else half of the machine's physical memory; ValueError if invalid."""
    value = positive_env_number(MEMORY_LIMIT_ENV, "GiB")
    if value is not None:
        return int(value * GIB)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return FALLBACK_LIMIT_BYTES


def estimate_training_memory(
    build: Callable[[], nn.Module],
    loss: Callable[[nn.Module], Tensor] | None = None,
    copies: int = TRAINING_COPIES,
) -> MemoryEstimate:
    """Estimates the memory of training ``build()`` without allocating it.

    ``build`` is called under ``torch.device("meta")``; ``loss(module)``, if given, is one training
    forward pass on meta tensors (e.g. ``-module.logProbability(batch).mean()``) whose saved tensors are
    counted. A family whose forward pass cannot run on meta tensors counts parameters only. ``copies``
    is how many copies of the parameters are held (1 to build the model and run it without training).
    MemoryLimitError when the model is too large even to describe (sizes beyond 64-bit counts).
    """
    try:
        with torch.device("meta"):
            module = build()
    except (RuntimeError, OverflowError, TypeError, ValueError) as error:
        if not isinstance(error, OverflowError) and "overflow" not in str(error).lower():
            raise  # a genuine error of the model's own checks
        raise MemoryLimitError(
            "the model is too large to build: one of its sizes exceeds 64-bit counts"
        ) from None
    parameters = sum(p.numel() for p in module.parameters())
    bytes_per_value = max((p.element_size() for p in module.parameters()), default=4)
    saved = 0
    weights = {id(p) for p in module.parameters()}

    def pack(tensor: Tensor) -> Tensor:
        nonlocal saved
        if id(tensor) not in weights and id(tensor._base) not in weights:  # weights are counted above
            saved += tensor.numel() * tensor.element_size()
        return tensor

    if loss is not None:
        try:
            with torch.device("meta"), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss(module)
        except (RuntimeError, NotImplementedError, ValueError):  # data-dependent code: no meta kernel
            saved = 0
    return MemoryEstimate(parameters, bytes_per_value, saved, copies)


def check_fits(estimate: MemoryEstimate, what: str = "this model", remedy: str = "") -> None:
    """Raises :class:`MemoryLimitError` when ``estimate`` exceeds :func:`memory_limit_bytes`."""
    limit = memory_limit_bytes()
    if estimate.total_bytes <= limit:
        return
    advice = f"{remedy}, or raise" if remedy else "make it smaller, or raise"
    raise MemoryLimitError(
        f"{what} would need about {format_bytes(estimate.total_bytes)} of memory "
        f"({estimate.parameters:,} parameters: {format_bytes(estimate.state_bytes)} of weights"
        f"{', gradients and optimizer state' if estimate.copies > 1 else ''}, "
        f"{format_bytes(estimate.activation_bytes)} of activations), more than the limit of "
        f"{format_bytes(limit)}; {advice} {MEMORY_LIMIT_ENV}"
    )
