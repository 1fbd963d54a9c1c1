"""The dashboard against careless or hostile input, in AppTest: uploads, sizes that would exhaust memory."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from flows import limits
from flows.training import TrainConfig, runs

from .browser import REPO
from .conftest import train_in_folder

APP = str(REPO / "streamlit_app.py")
TIMEOUT_S = 60


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLOWLAB_DATA_DIR", str(tmp_path / "no-mnist"))
    monkeypatch.setenv("FLOWLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "2")
    return tmp_path / "runs"


def page(path: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    app.switch_page(path)
    return app.run()


@pytest.fixture(scope="module")
def good_state(tmp_path_factory: pytest.TempPathFactory) -> dict:
    config = TrainConfig(dataset="moons", hidden=[8], blocks=2, batch_size=16, steps=3, toy_points=64)
    source = runs.create_run(tmp_path_factory.mktemp("elsewhere"), config, name="source")
    train_in_folder(config, source)
    return runs.load_checkpoint(runs.checkpoint_path(source, "last"))


def _bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _with(state: dict, **changes: object) -> dict:
    config = {**state["config"], **changes.pop("config", {})}
    return {**state, **changes, "config": config}


BAD_UPLOADS = {
    "step list": ({"step": [1, 2]}, '"step" must be a non-negative integer'),
    "step text": ({"step": "abc"}, '"step" must be a non-negative integer'),
    "huge model": ({"config": {"hidden": [30000, 30000], "blocks": 16}}, "more than the limit of 2.0 GiB"),
    "huge samples": ({"config": {"sample_count": 10**9}}, "sample_count must be at most"),
    "weights of another model": ({"config": {"hidden": [9]}}, "another architecture"),
    "config not a dict": ({"config": [1]}, "training config is invalid"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_is_explained_and_writes_nothing(case: str, runs_dir: Path, good_state: dict) -> None:
    changes, words = BAD_UPLOADS[case]
    state = {**good_state, "config": [1]} if case == "config not a dict" else _with(good_state, **changes)
    app = page("pages/train.py")
    app.get("file_uploader")[0].set_value(("bad.pt", _bytes(state), "application/octet-stream")).run()
    assert not app.exception
    assert any(words in error.value for error in app.error), [e.value for e in app.error]
    assert not runs_dir.exists() or not list(runs_dir.glob("upload-*"))  # no half-made run folder


def test_an_upload_cannot_choose_the_servers_folders(runs_dir: Path, good_state: dict) -> None:
    state = _with(good_state, config={"data_dir": "/etc", "num_threads": 64})
    app = page("pages/train.py")
    app.get("file_uploader")[0].set_value(("moons.pt", _bytes(state), "application/octet-stream")).run()
    assert any("Imported as run" in success.value for success in app.success)
    (imported,) = runs_dir.glob("upload-moons-*")
    config = runs.read_config(imported)
    assert (config.data_dir, config.num_threads) == ("", 0)


def test_the_train_page_refuses_a_model_that_would_exhaust_memory(runs_dir: Path) -> None:
    app = page("pages/train.py")
    app.selectbox(key="train_dataset").set_value("moons")
    app.text_input(key="train_hidden").set_value("30000, 30000")
    app.number_input(key="train_blocks").set_value(16)
    app.run()
    assert not app.exception
    assert any("more than the limit of 2.0 GiB" in error.value for error in app.error)
    assert next(b for b in app.button if b.key == "train_start").disabled
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_the_model_page_refuses_an_mlp_whose_total_exceeds_the_limit(runs_dir: Path) -> None:
    app = page("pages/model.py")
    app.text_input(key="model_sizes").set_value("50000, 50000, 50000").run()
    assert not app.exception
    assert any("more than the limit of 2.0 GiB" in error.value for error in app.error)
    assert not app.metric
