"""A trained flow as ``model.safetensors`` plus ``config.json``: weights and the recipe that rebuilds it.

Layout of an export folder::

    model.safetensors   every tensor of ``model.state_dict()``; its metadata repeats the config
    config.json         TrainConfig.to_dict(), the same as a run folder's

Loading reads only JSON and safetensors (no pickle, no code): the config rebuilds the model through
:func:`build_model`, so every family it knows exports without extra code, and the weights load
strictly (a missing or unexpected tensor is an error). The rebuilt model gives identical log-densities.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from .. import __version__
from ..infra import atomic_write_bytes
from ..models import Flow
from . import runs
from .checkpoints import load_safetensors
from .config import TrainConfig
from .factory import build_model

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: The ``format`` entry of the safetensors metadata, checked on load.
FORMAT = "flowlab"
#: Where :func:`export_run` writes by default, inside the run folder.
EXPORT_DIR = "export"


def export_model(model: Flow, config: TrainConfig, folder: str | Path) -> Path:
    """Writes ``folder/model.safetensors`` and ``folder/config.json``; returns the safetensors path.

    Each file is written to a temp name and renamed, so a crash never leaves a partial file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_json = json.dumps(config.to_dict())
    metadata = {"format": FORMAT, "flowlab_version": __version__, "config": config_json}
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    path = folder / MODEL_FILE
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    runs.write_json(folder / CONFIG_FILE, config.to_dict())
    return path


def export_run(run_dir: str | Path, which: str | None = None, folder: str | Path | None = None) -> Path:
    """Exports a run's checkpoint (``which``: "best", "last"; None: best if there is one, else last).

    Writes to ``folder`` (default ``<run_dir>/export``); returns the folder.
    """
    run_dir = Path(run_dir)
    if which is None:
        which = "best" if runs.checkpoint_path(run_dir, "best").is_file() else "last"
    model, config = runs.load_run_model(run_dir, which)
    folder = run_dir / EXPORT_DIR if folder is None else Path(folder)
    export_model(model, config, folder)
    return folder


def read_export_config(path: str | Path) -> TrainConfig:
    """The config of an export: ``config.json`` beside the weights, else the copy in their metadata."""
    weights = _weights_file(path)
    beside = weights.parent / CONFIG_FILE
    if beside.is_file():
        data = runs.read_json(beside)
    else:
        with safe_open(str(weights), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT or "config" not in metadata:
            raise ValueError(
                f"{weights} is not a Flow Lab export (no config.json beside it, no config inside)"
            )
        data = json.loads(metadata["config"])
    try:
        return TrainConfig.from_dict(data).validate()
    except (TypeError, ValueError) as error:
        raise ValueError(f"the config of {weights}: {error}") from error


def load_export(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Flow, TrainConfig]:
    """The exported model (in eval mode, on ``map_location``) and its config.

    ``path`` is an export folder or its ``model.safetensors``. Reads no pickle: JSON and safetensors only.
    """
    weights = _weights_file(path)
    config = read_export_config(weights)
    model = build_model(config)
    load_safetensors(model, weights)
    return model.to(map_location).eval(), config


def _weights_file(path: str | Path) -> Path:
    path = Path(path)
    weights = path / MODEL_FILE if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found; export a run first (main.py --export runs/<run-id>)")
    return weights
