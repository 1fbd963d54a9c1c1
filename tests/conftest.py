"""Shared fixtures: real data from ../shared beside the repository, skipped with a reason when absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# The sample score trains a classifier the first time (most of a minute): off for every run the tests
# start, main.py subprocesses included; the tests of the score pass a judge of their own.
os.environ["FLOWLAB_NO_SAMPLE_SCORE"] = "1"
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST test set (t10k, gz IDX) from ../shared/data/mnist."""
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST digits not found at {SHARED_MNIST} (../shared is absent in a user's clone)")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """Debian's dataset-fashion-mnist (60,000 + 10,000 images)."""
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found at {FASHION_MNIST}; apt-get install dataset-fashion-mnist")
    return FASHION_MNIST


@pytest.fixture(scope="session")
def judge_cache(mnist_dir, tmp_path_factory):
    """The MNIST sample judge, trained once per session (about 25 s) into a temporary cache folder:
    ``(judge, cache folder, the progress messages of its training)``."""
    from flows.evaluation import load_judge

    cache = tmp_path_factory.mktemp("judge")
    messages: list[str] = []
    judge = load_judge("mnist", mnist_dir, cache, on_progress=messages.append)
    return judge, cache, messages


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One real Chromium per test module (tests/browser.py); the module skips, saying why, without one."""
    from .browser import chromium, missing_browser

    reason = missing_browser()
    if reason:
        print(f"SKIP browser tests: {reason}")
        pytest.skip(reason)
    with chromium() as launched:
        yield launched


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    """Every test starts from the same random state."""
    torch.manual_seed(0)


def train_in_folder(config, run_dir: Path) -> list:
    """Trains ``config`` to the end with a run-folder logger attached, as main.py does; the events."""
    from flows.training import RunLogger, Trainer

    trainer = Trainer(config)
    return trainer.run(on_event=RunLogger(run_dir, trainer))


@pytest.fixture
def one_thread() -> None:
    """One intra-op thread: on a shared, oversubscribed CPU two threads can run ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
