"""Long-lived objects of the dashboard, one per server process (``st.cache_resource``), and where things live.

Environment variables the dashboard reads:

- ``FLOWLAB_RUNS_DIR``: the runs folder (default ``runs/`` in the repository, where ``main.py`` writes).
- ``FLOWLAB_DATA_DIR``: the MNIST folder (read by ``flows.data.default_data_dir``; default ``data/mnist``).
- ``FLOWLAB_FASHION_MNIST_DIR``: the Fashion-MNIST folder (default ``data/fashion-mnist``, else Debian's
  ``/usr/share/datasets/fashion-mnist`` when that holds the files).
- ``FLOWLAB_MAX_RUNS``: runs that may train at once (default 1 on a CPU machine, one per GPU).
- ``FLOWLAB_EXAMPLES_DIR``: the shipped example runs (default ``examples/runs`` in the repository).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
from torch import Tensor

from dashboard.services.run_manager import RunManager, default_max_concurrent
from dashboard.services.threads import torch_ready  # pages call state.torch_ready()
from dashboard.widgets.charts import Curves, read_curves
from flows.data import load_mnist
from flows.data.location import image_data_dir, split_present
from flows.evaluation import Judge, judge_cached, load_judge
from flows.models import Flow
from flows.training import RunInfo, TrainConfig, runs
from flows.training.examples import examples_dir, list_examples

MAX_RUNS_ENV = "FLOWLAB_MAX_RUNS"


def runs_root() -> Path:
    """The runs folder: ``$FLOWLAB_RUNS_DIR``, else ``runs/`` in the repository."""
    return runs.default_runs_dir()


def max_runs_setting() -> int:
    """``$FLOWLAB_MAX_RUNS`` when it is a positive integer, else the machine's default."""
    value = os.environ.get(MAX_RUNS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else default_max_concurrent()


@st.cache_resource(show_spinner=False)
def _run_manager(root: str, max_concurrent: int) -> RunManager:
    torch_ready()  # once per server process, before any page computes
    return RunManager(root, max_concurrent=max_concurrent)


def run_manager() -> RunManager:
    """The process-wide RunManager of the current runs folder (shared by every tab and session)."""
    return _run_manager(str(runs_root()), max_runs_setting())


@st.cache_resource(show_spinner=False, max_entries=4)
def _test_split(folder: str, dataset: str) -> tuple[Tensor, Tensor]:
    return load_mnist(folder, "test", dataset)


def _test_images(folder: str, dataset: str) -> Tensor:
    return _test_split(folder, dataset)[0]


def test_labels(dataset: str = "mnist") -> Tensor | None:
    """The int64 classes ``[N]`` of :func:`test_images`, or None when not on disk."""
    folder = image_data_dir(dataset)
    if not split_present(folder, dataset, "test"):
        return None
    return _test_split(str(folder), dataset)[1]


def test_images(dataset: str = "mnist") -> Tensor | None:
    """The 10,000 uint8 test images ``[N, 28, 28]`` of an image dataset, or None when not on disk."""
    folder = image_data_dir(dataset)
    if not split_present(folder, dataset, "test"):
        return None
    return _test_images(str(folder), dataset)


@st.cache_resource(show_spinner=False, max_entries=2)
def _judge(dataset: str, folder: str) -> Judge:
    return load_judge(dataset, folder)


def judge(dataset: str = "mnist") -> Judge | None:
    """The sample judge of an image dataset (trained on first use, then cached), None without its data."""
    folder = image_data_dir(dataset)
    if not split_present(folder, dataset, "test"):
        return None
    return _judge(dataset, str(folder))


def judge_ready(dataset: str = "mnist") -> bool:
    """True when the judge of ``dataset`` loads quickly (it is on disk or in this process)."""
    return judge_cached(dataset, image_data_dir(dataset))


@st.cache_resource(show_spinner=False, max_entries=4)
def _run_model(run_path: str, which: str, modified: float) -> tuple[Flow, TrainConfig]:
    del modified  # part of the cache key only: a newer checkpoint loads again
    return runs.load_run_model(run_path, which)


def run_model(run_path: str | Path, which: str = "last") -> tuple[Flow, TrainConfig]:
    """A run's model (eval mode, CPU) from a checkpoint, reloaded when the checkpoint file changes."""
    path = runs.checkpoint_path(run_path, which)
    modified = path.stat().st_mtime if path.is_file() else 0.0
    model, config = _run_model(str(run_path), which, modified)
    return model, config


def _run_signature(path: Path) -> tuple:
    """What a run folder's summary depends on: its files' sizes and times, and whether its process lives."""
    files = [path / runs.CONFIG_FILE, path / runs.STATUS_FILE, path / runs.METRICS_FILE]
    files += sorted((path / runs.CHECKPOINT_DIR).glob("*.pt"))
    stats = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        stats.append((file.name, stat.st_mtime_ns, stat.st_size))
    return (*stats, runs.effective_state(runs.read_status(path)))


@st.cache_data(show_spinner=False, max_entries=512)
def _run_info(path: str, signature: tuple) -> RunInfo:
    del signature  # part of the cache key only
    return runs.run_info(path)


def run_info(path: str | Path) -> RunInfo:
    """One run folder's summary (``flows.training.runs.run_info``), read again only when a file changed."""
    return _run_info(str(path), _run_signature(Path(path)))


def run_infos(root: str | Path | None = None) -> list[RunInfo]:
    """Every run folder of the runs folder, most recently updated first (as ``list_runs``).

    A folder is read again only when one of its files changed, so pages stay fast with many long runs.
    """
    return runs.list_runs(root if root is not None else runs_root(), read=run_info)


@st.cache_data(show_spinner=False, max_entries=4)
def _examples(root: str) -> list[RunInfo]:
    return list_examples(root)


def example_infos() -> list[RunInfo]:
    """The shipped, read-only example runs (``flows.training.examples``), read once per server."""
    return _examples(str(examples_dir()))


def runs_and_examples() -> list[RunInfo]:
    """The runs folder's runs holding weights, most recent first, then the examples."""
    return [info for info in run_infos() if info.checkpoints and info.config is not None] + example_infos()


@st.cache_data(show_spinner=False, max_entries=64)
def _curves(path: str, signature: tuple) -> Curves | None:
    del signature
    return read_curves(path)


def run_curves(path: str | Path) -> Curves | None:
    """A run folder's curves from metrics.jsonl, read again only when the file changed."""
    return _curves(str(path), _run_signature(Path(path)))


@dataclass(frozen=True)
class RunQuality:
    """What metrics.jsonl says about a run's quality: the last sample score, a standing overfit warning."""

    score: dict[str, Any] | None  # EvalEvent.sample_score of the last evaluation that had one
    score_step: int
    overfit: str | None  # the last overfitting message, unless a new best came after it


def read_quality(path: str | Path) -> RunQuality:
    """:class:`RunQuality` of a run folder (reads its metrics.jsonl)."""
    score, score_step, overfit, overfit_step, best_step = None, 0, None, -1, -1
    for line in runs.read_metrics(path):
        kind = line.get("kind")
        if kind == "eval":
            if line.get("sample_score"):
                score, score_step = line["sample_score"], int(line["step"])
            if line.get("best"):
                best_step = int(line["step"])
        elif kind == "overfit":
            overfit, overfit_step = line.get("message"), int(line["step"])
    return RunQuality(score, score_step, overfit if overfit_step > best_step else None)


@st.cache_data(show_spinner=False, max_entries=64)
def _quality(path: str, signature: tuple) -> RunQuality:
    del signature
    return read_quality(path)


def run_quality(path: str | Path) -> RunQuality:
    """:func:`read_quality`, read again only when the run's files changed."""
    return _quality(str(path), _run_signature(Path(path)))
