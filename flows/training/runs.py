"""Runs on disk: one folder per run, written atomically so that no crash leaves a file unreadable.

Layout of ``<root>/<run-id>/``::

    config.json          TrainConfig.to_dict()
    metrics.jsonl        one JSON object per line, flushed at once (see METRIC_KEYS)
    status.json          {"state": one of RUN_STATES, "pid", "host", "updated", "step", ...}
    samples.png          a grid of samples (images) or a 2D histogram of samples (toys), per evaluation
    checkpoints/last.pt  the latest state; best.pt the state with the lowest test loss (with "ema", the
                         moving average of the weights, when the run keeps one)
    export/              model.safetensors + config.json, once exported (export.py): the "export" weights
    example.json         only in a shipped example (examples.py): the folder is read-only

Checkpoints hold only tensors, numbers, strings, lists, tuples and dicts, so they load with
``torch.load(weights_only=True)``; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import infra
from ..infra import atomic_file, atomic_write_bytes
from ..models import Flow
from ..paths import work_root
from .checkpoints import check_state, load_safetensors, read_checkpoint_file
from .config import TrainConfig
from .factory import build_model

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
SAMPLES_FILE = "samples.png"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINTS = ("best", "last")  # in the order pages offer them: best first, the default choice
EXPORT = "export"  # the exported weights, export/model.safetensors, which load_run_model also reads
WEIGHTS = (*CHECKPOINTS, EXPORT)  # every kind of weights a run folder can hold, in the pages' order
EXPORT_WEIGHTS = Path(EXPORT) / "model.safetensors"
EXAMPLE_FILE, EXAMPLE_PREFIX = "example.json", "example-"  # a shipped example (examples.py): read-only
RUN_STATES = ("created", "queued", "running", "paused", "stopped", "done", "failed")
RUNS_DIR_ENV = "FLOWLAB_RUNS_DIR"
#: Keys present in every metrics line; a value is null where it does not apply to that line's kind.
METRIC_KEYS = ("kind", "step", "loss", "train_bits_per_dim", "test_bits_per_dim", "images_per_sec", "elapsed")


def default_runs_dir() -> Path:
    """Where ``main.py`` and the dashboard keep runs: ``$FLOWLAB_RUNS_DIR``, else ``runs/`` in the repo
    (in the current folder for a pip-installed Flow Lab, see :func:`flows.paths.work_root`)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or work_root() / "runs")


# --- JSON ---------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Replaces NaN and infinities (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Atomically writes ``data`` as indented JSON."""
    atomic_write_bytes(path, (json.dumps(_json_safe(data), indent=2) + "\n").encode())


def read_json(path: str | Path) -> Any:
    """Parses a JSON file; ValueError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from error


# --- run folders ------------------------------------------------------------------------------------


def new_run_id(config: TrainConfig, name: str | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<model>-<dataset>`` or ``name`` (letters, digits, ``-_.`` only)."""
    if name is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
            raise ValueError(f"run name {name!r} may hold only letters, digits, '-', '_' and '.'")
        if name.startswith(EXAMPLE_PREFIX):
            raise ValueError(f"run names starting with {EXAMPLE_PREFIX!r} are kept for the shipped examples")
        return name
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model}-{config.dataset}"


def create_run(root: str | Path, config: TrainConfig, name: str | None = None) -> Path:
    """Creates ``root/<run-id>/`` with config.json and a "created" status; returns its path.

    A clash of automatic ids gets a ``-2``, ``-3``... suffix; a clash of an explicit ``name`` is a ValueError.
    """
    config.validate()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id(config, name)
    for attempt in range(1, 1000):
        path = root / (run_id if attempt == 1 else f"{run_id}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            if name is not None:
                raise ValueError(
                    f"a run named {name!r} already exists in {root}; pick another name"
                ) from None
            continue
        (path / CHECKPOINT_DIR).mkdir()
        write_json(path / CONFIG_FILE, config.to_dict())
        write_status(path, "created", step=0, steps=config.steps)
        return path
    raise RuntimeError(f"could not create a new run folder in {root}")


def check_writable(run_path: str | Path) -> None:
    """Raises the OSError of writing into the run folder or its checkpoints/ (e.g. read-only), if any."""
    run_path = Path(run_path)
    for folder in (run_path, run_path / CHECKPOINT_DIR):
        folder.mkdir(exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
        os.close(descriptor)
        os.unlink(name)


def remove_stale_temp_files(run_path: str | Path) -> list[Path]:
    """Deletes the temp files a killed writer left in the run folder; returns their paths."""
    run_path = Path(run_path)
    checkpoints = run_path / CHECKPOINT_DIR
    return [*infra.remove_stale_temp_files(run_path), *infra.remove_stale_temp_files(checkpoints)]


def read_config(run_path: str | Path) -> TrainConfig:
    """The validated TrainConfig saved in ``run_path/config.json``."""
    path = Path(run_path) / CONFIG_FILE
    try:
        found = path.is_file()
    except OSError:  # e.g. a name longer than the file system allows
        found = False
    if not found:
        raise FileNotFoundError(f"{path} not found; is {run_path} a run folder (runs/<run-id>)?")
    try:
        return TrainConfig.from_dict(read_json(path)).validate()
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def write_status(run_path: str | Path, state: str, **details: Any) -> None:
    """Atomically writes status.json: ``state``, this process's pid and host, the time, ``details``."""
    if state not in RUN_STATES:
        raise ValueError(f"unknown run state {state!r}; valid: {', '.join(RUN_STATES)}")
    status = {"state": state, "pid": os.getpid(), "host": socket.gethostname(), "updated": time.time()}
    status.update(details)
    write_json(Path(run_path) / STATUS_FILE, status)


def read_status(run_path: str | Path) -> dict[str, Any] | None:
    """status.json as a dict, or None when it is missing or unreadable."""
    try:
        status = read_json(Path(run_path) / STATUS_FILE)
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def effective_state(status: dict[str, Any] | None) -> str:
    """The status's state, but a live state of a process gone from this host reads "interrupted"."""
    if not status:
        return "unknown"
    state = str(status.get("state", "unknown"))
    pid, host = status.get("pid"), status.get("host")
    live_states = ("queued", "running", "paused")
    if (
        state in live_states
        and host == socket.gethostname()
        and isinstance(pid, int)
        and not infra.process_alive(pid)
    ):
        return "interrupted"
    return state


# --- metrics ----------------------------------------------------------------------------------------


class MetricsWriter:
    """Appends one JSON object per line to metrics.jsonl, flushing each line to the OS at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Writes ``record`` with every key of METRIC_KEYS (null where absent) plus its own keys."""
        line = {key: record.get(key) for key in METRIC_KEYS}
        line.update(record)
        self._handle.write(json.dumps(_json_safe(line)) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_metrics(run_path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of metrics.jsonl (a line cut short by a crash is skipped)."""
    path = Path(run_path) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_metrics(run_path: str | Path, last_step: int) -> None:
    """Drops the lines after ``last_step`` (written after the checkpoint a resumed run starts from)."""
    path = Path(run_path) / METRICS_FILE
    if not path.is_file():
        return
    kept = [r for r in read_metrics(run_path) if not isinstance(r.get("step"), int) or r["step"] <= last_step]
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


# --- checkpoints ------------------------------------------------------------------------------------


def checkpoint_path(run_path: str | Path, which: str = "last") -> Path:
    """``run_path/checkpoints/<which>.pt`` for ``which`` in ("last", "best"); for "export",
    ``run_path/export/model.safetensors``."""
    if which not in WEIGHTS:
        raise ValueError(f"which must be one of {', '.join(WEIGHTS)}, got {which!r}")
    if which == EXPORT:
        return Path(run_path) / EXPORT_WEIGHTS
    return Path(run_path) / CHECKPOINT_DIR / f"{which}.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically writes ``state`` with torch.save: a kill at any moment leaves the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as handle:
        torch.save(state, handle)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True`` (tensors and plain containers only)."""
    state = read_checkpoint_file(path)  # one line in our words for an empty, foreign or damaged file
    if "model" not in state or "step" not in state:
        raise ValueError(f"checkpoint {path} is not a Flow Lab checkpoint (no model state and step)")
    if map_location != "cpu":
        state = _to_device(state, torch.device(map_location))
    return state


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(item, device) for item in value)
    return value


def load_run_model(
    run_path: str | Path, which: str = "last", map_location: str | torch.device = "cpu"
) -> tuple[Flow, TrainConfig]:
    """The trained model of a run (in eval mode) and its config: the moving average of its weights
    where the run kept one (``ema_decay``), as its evaluations and samples used. ``which`` "export"
    reads ``export/model.safetensors`` (the weights export.py wrote, the EMA ones where there was one)."""
    config = read_config(run_path)
    path = checkpoint_path(run_path, which)
    if which == EXPORT:
        model = build_model(config)
        load_safetensors(model, path)
        return model.to(map_location).eval(), config
    state = load_checkpoint(path)
    check_state(state, config, name=f"checkpoint {path}")
    model = build_model(config)
    ema = state.get("ema")
    model.load_state_dict(ema["average"] if isinstance(ema, dict) and "average" in ema else state["model"])
    return model.to(map_location).eval(), config


# --- listing ----------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """What a dashboard shows about one run folder without loading its model."""

    run_id: str
    path: Path
    config: TrainConfig | None  # None when config.json is missing or invalid
    state: str  # effective_state of status.json: created/running/paused/stopped/done/failed/interrupted
    step: int  # the last step in metrics.jsonl (0 if none)
    steps: int | None  # the planned number of steps
    loss: float | None  # the last train loss (nats)
    test_bits_per_dim: float | None  # the last evaluation's test bits/dim
    updated: float  # modification time of the folder's newest file (seconds since the epoch)
    checkpoints: list[str] = field(default_factory=list)  # which of WEIGHTS ("best", "last", "export") exist
    error: str | None = None  # why config.json could not be read
    example: bool = False  # a shipped, read-only example (examples.list_examples)

    @property
    def label(self) -> str:
        """How pickers name it: the run id, or "glow (example)" for ``example-glow``."""
        return f"{self.run_id.removeprefix(EXAMPLE_PREFIX)} (example)" if self.example else self.run_id


def run_info(run_path: str | Path) -> RunInfo:
    """Summarises one run folder; never raises for damaged files (see RunInfo.error)."""
    path = Path(run_path)
    config, error = None, None
    try:
        config = read_config(path)
    except (OSError, ValueError) as problem:
        error = str(problem)
    status = read_status(path)
    records = read_metrics(path)
    steps_done = [r for r in records if r.get("kind") == "step"]
    evals = [r for r in records if r.get("test_bits_per_dim") is not None or r.get("kind") == "eval"]
    files = [p for p in path.rglob("*") if p.is_file()]
    return RunInfo(
        run_id=path.name,
        path=path,
        config=config,
        state=effective_state(status),
        step=int(steps_done[-1]["step"]) if steps_done else int((status or {}).get("step") or 0),
        steps=config.steps if config else None,
        loss=steps_done[-1].get("loss") if steps_done else None,
        test_bits_per_dim=evals[-1].get("test_bits_per_dim") if evals else None,
        updated=max((p.stat().st_mtime for p in files), default=path.stat().st_mtime),
        checkpoints=[which for which in WEIGHTS if checkpoint_path(path, which).is_file()],
        error=error,
    )


def list_runs(root: str | Path, read: Callable[[Path], RunInfo] = run_info) -> list[RunInfo]:
    """Every run folder (a folder with config.json) in ``root``, most recently updated first.

    ``read(folder)`` summarises one folder (:func:`run_info` by default; the dashboard passes a cached
    one that reads a folder again only when its files changed).
    """
    root = Path(root)
    if not root.is_dir():
        return []
    infos = [read(p) for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file()]
    return sorted(infos, key=lambda info: info.updated, reverse=True)
