"""Image flows in the dashboard (AppTest): the Train page's options and start, the Samples page's digit
picker for a conditional Glow, with every section computed from the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from flows import sampling
from flows.data import load_mnist
from flows.registry import get_family
from flows.training import TrainConfig, runs
from flows.training.factory import device_kind

from .apptest import open_page, use_folders
from .browser import make_data_dir
from .conftest import train_in_folder

TIMEOUT_S = 90
TINY_GLOW = {"model": "glow", "levels": 2, "steps_per_level": 1, "hidden_channels": 8}


@pytest.fixture(scope="module")
def glow_run(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A few steps of a tiny conditional Glow on 9,000 test digits, evaluated on the last 1,000."""
    root = tmp_path_factory.mktemp("glow")
    data_dir = make_data_dir(mnist_dir, root / "data" / "mnist")
    config = TrainConfig(
        **TINY_GLOW,
        conditional=True,
        batch_size=16,
        steps=10,
        holdout=1000,
        data_dir=str(data_dir),
        eval_every=0,
    )
    train_in_folder(config, runs.create_run(root / "runs", config, name="cglow"))
    return data_dir, root / "runs"


def page(path: str, data_dir: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    use_folders(monkeypatch, data_dir, runs_dir)
    return open_page(path, TIMEOUT_S)


def widget(app: AppTest, key: str):
    return next(element for element in app.main if getattr(element, "key", None) == key)


def test_the_samples_page_draws_the_digit_asked_of_a_conditional_glow(glow_run, monkeypatch) -> None:
    data_dir, runs_dir = glow_run
    app = page("pages/samples.py", data_dir, runs_dir, monkeypatch)
    assert not app.exception
    assert "levels 2 · steps_per_level 1 · hidden_channels 8 · conditional" in " ".join(
        c.value for c in app.caption
    )
    assert len(app.image) == 4  # samples, real digits, interpolation, round trip
    errors = {metric.label: float(metric.value) for metric in app.metric}
    assert errors["Max |error|, float64"] < 1e-9
    first = app.image[0].proto.imgs[0].url
    widget(app, "samples_digit").set_value(7).run()
    assert not app.exception
    assert app.image[0].proto.imgs[0].url != first  # a new grid: sevens only
    model, _ = runs.load_run_model(runs_dir / "cglow", "last")
    digits, labels = load_mnist(data_dir, "test")
    scores = sampling.image_bits_per_dim(model, digits[:4], labels=labels[:4])
    wrong = sampling.image_bits_per_dim(model, digits[:4], labels=(labels[:4] + 1) % 10)
    assert torch.isfinite(scores).all() and not torch.equal(scores, wrong)


def test_the_train_page_offers_the_image_flows_with_their_preset(mnist_dir, tmp_path, monkeypatch) -> None:
    data_dir = make_data_dir(mnist_dir, tmp_path / "data" / "mnist")
    app = page("pages/train.py", data_dir, tmp_path / "runs", monkeypatch)
    options = set(widget(app, "train_model").options)
    assert {get_family("glow").label, get_family("conv-realnvp").label} <= options
    widget(app, "train_model").set_value("glow").run()
    assert not app.exception
    preset = get_family("glow").preset(device_kind("auto"))
    assert widget(app, "train_glow_levels").value == preset["levels"]
    assert widget(app, "train_glow_hidden_channels").value == preset["hidden_channels"]
    widget(app, "train_glow_levels").set_value(1)
    widget(app, "train_glow_steps_per_level").set_value(1)
    widget(app, "train_glow_hidden_channels").set_value(8)
    widget(app, "train_glow_conditional").set_value(True)
    widget(app, "train_steps").set_value(3)
    app.run()
    next(b for b in app.button if b.key == "train_start").click().run()
    assert not app.exception
    run_id = app.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    config = runs.read_config(tmp_path / "runs" / run_id)
    assert (config.model, config.levels, config.hidden_channels, config.conditional) == ("glow", 1, 8, True)
