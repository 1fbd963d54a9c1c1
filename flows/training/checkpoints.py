"""Reading a checkpoint someone handed us: what the file is, and whether every part fits the config.

:func:`read_checkpoint` says in one line of our own words why a file is not a Flow Lab checkpoint
(empty, a safetensors file, pickled code, damaged, ...) instead of passing on torch's long message.
:func:`check_state` checks types, keys and shapes against the model the config builds (on the meta
device, so nothing is allocated) before any of it is loaded, so a bad file never half-loads.
"""

from __future__ import annotations

import io
import math
import pickle
import warnings
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from ..registry import get_family
from .config import TrainConfig
from .factory import build_model

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_2_PLUS = b"\x80"
#: Keys a resumable checkpoint holds besides ``model`` and ``step`` (see ``Trainer.state_dict``).
RESUME_KEYS = ("optimizer", "rng", "lr_scale", "nan_count", "best_test_loss", "elapsed")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _looks_like_safetensors(data: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON header."""
    if len(data) < 10:
        return False
    length = int.from_bytes(data[:8], "little")
    return 0 < length <= len(data) - 8 and data[8:9] == b"{"


def read_checkpoint(data: bytes, name: str = "the file") -> dict[str, Any]:
    """Loads checkpoint bytes with ``torch.load(weights_only=True)``; ValueError (one line) if unreadable.

    Returns the loaded dict without checking its contents (see :func:`check_state`).
    """
    unreadable = f"{name} is not a readable PyTorch checkpoint"
    if not data:
        raise ValueError(f"{unreadable}: it is empty (0 bytes)")
    if _looks_like_safetensors(data):
        raise ValueError(
            f"{unreadable}: it is a safetensors file; pick a Flow Lab run's checkpoints/last.pt or best.pt"
        )
    if not (data.startswith(ZIP_MAGIC) or data.startswith(PICKLE_PROTOCOL_2_PLUS)):
        raise ValueError(f"{unreadable}: it does not start like one (damaged, or another kind of file)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols: our message says enough
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{unreadable}: it holds Python objects other than tensors and plain values (possibly code), "
            "which are never unpickled here; only checkpoints written by Flow Lab are accepted"
        ) from None
    except Exception:  # torch's loaders raise many types (zip, EOF, runtime errors) for damaged files
        raise ValueError(f"{unreadable}: it is damaged or cut short") from None
    if not isinstance(state, dict):
        raise ValueError(
            f"{name} holds a {type(state).__name__}, not a Flow Lab checkpoint (a dict with the model "
            "weights, the step and the training config)"
        )
    return state


def read_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """:func:`read_checkpoint` of a file; FileNotFoundError if it is missing, ValueError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read checkpoint {path} ({error.strerror or error})") from None
    return read_checkpoint(data, f"checkpoint {path}")


def expected_shapes(config: TrainConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every entry of the state dict of ``config``'s model, built on meta."""
    with torch.device("meta"):
        model = build_model(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _problem(state: dict[str, Any], config: TrainConfig, resume: bool) -> str | None:
    if "model" not in state or "step" not in state:
        missing = " and ".join(key for key in ("model", "step") if key not in state)
        return f"it has no {missing}: it is not a Flow Lab checkpoint"
    step = state["step"]
    if not _is_int(step) or step < 0:
        return f'its "step" must be a non-negative integer, got {step!r:.60}'
    weights = state["model"]
    if not isinstance(weights, dict) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in weights.items()
    ):
        return 'its "model" must map parameter names to tensors'
    expected = expected_shapes(config)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        parts = [
            f"{verb} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
            for verb, keys in (("lacks", missing), ("has an unknown", unexpected))
            if keys
        ]
        model = f"{config.model}: {get_family(config.model).summary(config)}"
        return f"its weights are not those of its config's model ({model}): it {' and '.join(parts)}"
    for key, shape in expected.items():
        if tuple(weights[key].shape) != shape:
            return (
                f"its weight {key} has shape {list(weights[key].shape)} but the config's model needs "
                f"{list(shape)}; was it trained with another architecture?"
            )
        if weights[key].is_floating_point() and not torch.isfinite(weights[key]).all():
            return f"its weight {key} holds NaN or infinite values"
    if not resume:
        return None
    absent = [key for key in RESUME_KEYS if key not in state]
    if absent:
        return f"it cannot be resumed: it has no {', '.join(absent)}"
    for key in ("lr_scale", "elapsed"):
        if not _is_number(state[key]) or state[key] < 0:
            return f'its "{key}" must be a non-negative number, got {state[key]!r:.60}'
    if not _is_int(state["nan_count"]) or state["nan_count"] < 0:
        return f'its "nan_count" must be a non-negative integer, got {state["nan_count"]!r:.60}'
    if state["best_test_loss"] is not None and not _is_number(state["best_test_loss"]):
        return f'its "best_test_loss" must be a number or null, got {state["best_test_loss"]!r:.60}'
    rng = state["rng"]
    if (
        not isinstance(rng, dict)
        or not all(
            isinstance(rng.get(key), Tensor) and rng[key].dtype == torch.uint8 for key in ("torch", "data")
        )
        or not isinstance(rng.get("python"), (tuple, list))
    ):
        return 'its "rng" is not the random states a Flow Lab run saves'
    return _optimizer_problem(state["optimizer"], [expected[key] for key in _parameter_names(config)])


def _parameter_names(config: TrainConfig) -> list[str]:
    with torch.device("meta"):
        model = build_model(config)
    return [name for name, _ in model.named_parameters()]


def _optimizer_problem(optimizer: Any, shapes: list[tuple[int, ...]]) -> str | None:
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("state"), dict):
        return 'its "optimizer" is not an optimizer state'
    groups = optimizer.get("param_groups")
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups
    ):
        return 'its "optimizer" has no parameter groups'
    ids = [index for group in groups for index in group["params"]]
    if len(ids) != len(shapes) or not all(_is_int(index) for index in ids):
        return f'its "optimizer" holds {len(ids)} parameters, the model {len(shapes)}'
    shape_of = dict(zip(ids, shapes, strict=True))
    for index, moments in optimizer["state"].items():
        if index not in shape_of or not isinstance(moments, dict):
            return f'its "optimizer" has state for an unknown parameter {index!r:.30}'
        for key in ("exp_avg", "exp_avg_sq"):
            value = moments.get(key)
            if not isinstance(value, Tensor) or tuple(value.shape) != shape_of[index]:
                return f'its "optimizer" moment {key} of parameter {index} does not fit the model'
    return None


def check_state(state: Any, config: TrainConfig, resume: bool = False, name: str = "the checkpoint") -> None:
    """Checks a loaded checkpoint against ``config``: keys, types, every weight's shape, and with
    ``resume`` the optimizer moments, random states and counters. ValueError (one line) naming the part."""
    if not isinstance(state, dict):
        raise ValueError(f"{name} holds a {type(state).__name__}, not a Flow Lab checkpoint")
    problem = _problem(state, config, resume)
    if problem:
        raise ValueError(f"{name} does not fit its config: {problem}")


def load_safetensors(model: torch.nn.Module, path: str | Path) -> None:
    """Loads ``path`` (safetensors) into ``model`` strictly; ValueError if it does not fit, one line."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found; export a run first (main.py --export runs/<run-id>)")
    try:
        safetensors.torch.load_model(model, path, strict=True)
    except RuntimeError as error:  # missing or unexpected tensors, or a shape that does not fit
        raise ValueError(f"{path} does not fit the model its config describes: {error}") from error
