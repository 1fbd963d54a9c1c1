"""Uploaded checkpoints: checked as if a visitor had typed their config, then saved as a finished run.

Nothing in an upload is ever unpickled: the bytes load through ``flows.training.checkpoints``
(``torch.load(weights_only=True)``), the one checkpoint reader of the library, and every weight is
checked against the model the config builds (:func:`flows.training.checkpoints.check_state`) before a
run folder is written with ``flows.training.runs``.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from dashboard.services.form_limits import FORM_MAXIMA
from flows.training import TrainConfig, runs
from flows.training.checkpoints import check_state, read_checkpoint
from flows.training.factory import check_memory

UPLOAD_NAME_PATTERN = re.compile(r"[^A-Za-z0-9._-]+")


def read_checkpoint_bytes(data: bytes) -> tuple[dict[str, Any], TrainConfig]:
    """Loads an uploaded checkpoint safely (``torch.load(weights_only=True)``) and checks all of it.

    Its config is checked as if typed on the Train page (:func:`uploaded_config`: the server's own data
    folder, the form's ranges, the memory limit), then every weight's name and shape against the model that
    config builds (on the meta device), before anything is built or written. Returns the state and the
    config; ValueError with a message a user can act on otherwise.
    """
    if not data:
        raise ValueError("the file is empty; pick a checkpoint such as runs/<run-id>/checkpoints/last.pt")
    state = read_checkpoint(data, "this file")
    if "model" not in state or "config" not in state:
        raise ValueError(
            "this file is not a Flow Lab checkpoint: it has no model weights and training config "
            "(expected the checkpoints/last.pt or best.pt of a run)"
        )
    if not isinstance(state["config"], dict):
        raise ValueError("the checkpoint's training config is invalid: it is not a set of named fields")
    try:
        config = uploaded_config(TrainConfig.from_dict(dict(state["config"])))
    except (TypeError, ValueError) as error:
        raise ValueError(f"the checkpoint's training config is invalid: {error}") from None
    check_state(state, config, name="the checkpoint")
    return state, config


def uploaded_config(config: TrainConfig) -> TrainConfig:
    """An uploaded checkpoint's config, checked as if a visitor had typed it.

    The server's folders are not the uploader's to choose: ``data_dir`` is reset to the default, and
    ``num_threads`` to the server's; each field bounded on the Train page must lie in that range; the
    model must fit the memory limit. ValueError (one line, naming the field) otherwise.
    """
    config = replace(config, data_dir="", num_threads=0).validate()
    for name, highest in FORM_MAXIMA.items():
        value = getattr(config, name)
        if value > highest:
            raise ValueError(f"{name} must be at most {highest:,}, got {value:,}")
    check_memory(config)
    return config


def import_checkpoint(runs_root: str | Path, data: bytes, file_name: str) -> str:
    """Saves an uploaded checkpoint as a new finished run ``upload-<name>``; returns its run id."""
    state, config = read_checkpoint_bytes(data)
    stem = UPLOAD_NAME_PATTERN.sub("-", Path(file_name).stem).strip("-.") or "checkpoint"
    name = f"upload-{stem[:40]}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = runs.create_run(runs_root, config, name=name)
    try:
        runs.save_checkpoint(runs.checkpoint_path(path, "last"), state)
        runs.write_status(path, "done", step=state["step"], steps=config.steps, message="uploaded")
    except BaseException:  # e.g. a full disk: leave no half-made run folder behind
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path.name
