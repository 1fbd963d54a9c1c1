"""The example runs shipped with the repository: small trained flows that work offline on a fresh clone.

Layout of ``examples/runs/example-<name>/`` (written by ``scripts/train_examples.py``)::

    config.json, metrics.jsonl, status.json, samples.png   as in any run folder (runs.py)
    export/model.safetensors, export/config.json           the last checkpoint's weights (export.py)
    example.json                                           what it shows, the command, its held-out score

An example is a run folder whose only weights are the export, so the pages that read runs read it with
``runs.load_run_model(path, "export")``: JSON and safetensors, nothing unpickled. ``example.json``
makes it read-only: :class:`run_logger.RunLogger` refuses to write into it, so no run resumes into, extends
or overwrites an example.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ..paths import PACKAGE_PARENT
from . import runs
from .runs import EXAMPLE_FILE, RunInfo

#: Every example's folder name starts with this; run names never do (``runs.new_run_id``).
EXAMPLE_PREFIX = runs.EXAMPLE_PREFIX
#: Overrides where the examples are read from (e.g. an empty folder: a clone without examples).
EXAMPLES_DIR_ENV = "FLOWLAB_EXAMPLES_DIR"

__all__ = ["EXAMPLE_FILE", "EXAMPLE_PREFIX", "examples_dir", "list_examples", "read_example"]


def examples_dir() -> Path:
    """``$FLOWLAB_EXAMPLES_DIR``, else ``examples/runs`` of the clone (absent from a pip install)."""
    return Path(os.environ.get(EXAMPLES_DIR_ENV) or PACKAGE_PARENT / "examples" / "runs")


def read_example(path: str | Path) -> dict[str, Any]:
    """The ``example.json`` of an example folder (description, command, step, test_bits_per_dim)."""
    return runs.read_json(Path(path) / EXAMPLE_FILE)


def list_examples(root: str | Path | None = None) -> list[RunInfo]:
    """Every example in ``root`` (default :func:`examples_dir`) with its export, by name; marked
    ``RunInfo.example``. A folder without ``export/model.safetensors`` is left out."""
    root = examples_dir() if root is None else Path(root)
    if not root.is_dir():
        return []
    infos = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():  # e.g. a half-written .example-x.tmp
            continue
        if (folder / EXAMPLE_FILE).is_file() and (folder / runs.CONFIG_FILE).is_file():
            info = runs.run_info(folder)
            if runs.EXPORT in info.checkpoints and info.config is not None:
                infos.append(dataclasses.replace(info, example=True, checkpoints=[runs.EXPORT]))
    return infos
