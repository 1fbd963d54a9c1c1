"""The random states a checkpoint saves, so a resumed run continues step for step.

torch's CPU generator (initial weights, dropout-free sampling), Python's ``random``, the trainer's data
generator (batch indices and dequantization noise) and, on CUDA, the device's generator.
"""

from __future__ import annotations

import random
from typing import Any

import torch


def rng_state(data_generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """The random states to save: ``{"torch", "python", "data"}`` and ``"cuda"`` on a CUDA device."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "data": data_generator.get_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def load_rng_state(state: dict[str, Any], data_generator: torch.Generator, device: torch.device) -> None:
    """Restores :func:`rng_state` (a checkpoint's ``"rng"``); a CUDA state only onto a CUDA device."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(_as_python_random_state(state["python"]))
    data_generator.set_state(state["data"].cpu())
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _as_python_random_state(state: Any) -> tuple:
    """random.setstate needs tuples; a checkpoint round trip may hand back lists."""
    version, internal, gauss_next = state
    return (version, tuple(internal), gauss_next)
