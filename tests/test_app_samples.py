"""The Samples page in streamlit.testing.v1.AppTest, and the sampling maths it shows, on real MNIST digits."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard.samples import view as samples_view
from flows import sampling
from flows.data import load_mnist
from flows.training import EvalEvent, TrainConfig, load_export, runs

from .apptest import open_page, use_folders
from .browser import make_data_dir
from .conftest import train_in_folder

TIMEOUT_S = 60


@pytest.fixture(scope="module")
def mnist_run(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, EvalEvent]:
    """A few steps of a small RealNVP on 9,000 test digits, evaluated on the last 1,000 (as the dashboard)."""
    root = tmp_path_factory.mktemp("samples")
    data_dir = make_data_dir(mnist_dir, root / "data" / "mnist")
    config = TrainConfig(
        hidden=[16], blocks=2, batch_size=32, steps=20, holdout=1000, data_dir=str(data_dir), eval_every=0
    )
    path = runs.create_run(root / "runs", config, name="digits")
    events = train_in_folder(config, path)
    evaluation = next(event for event in events if event.kind == "eval")
    return data_dir, root / "runs", evaluation


def samples_page(data_dir: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    use_folders(monkeypatch, data_dir, runs_dir)
    return open_page("pages/samples.py", TIMEOUT_S)


def widget(app: AppTest, key: str):
    return next(element for element in app.main if getattr(element, "key", None) == key)


def test_without_a_run_it_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWLAB_EXAMPLES_DIR", str(tmp_path / "no-examples"))  # a clone without examples
    app = samples_page(tmp_path / "no-data", tmp_path / "no-runs", monkeypatch)
    assert not app.exception
    assert any("No trained run yet" in info.value and "Train" in info.value for info in app.info)


def test_samples_interpolation_round_trip_and_histogram_of_a_run(mnist_run, monkeypatch) -> None:
    data_dir, runs_dir, _ = mnist_run
    app = samples_page(data_dir, runs_dir, monkeypatch)
    assert not app.exception
    assert widget(app, "samples_run").value == "digits"
    for key in ("samples_temperature", "samples_seed", "samples_count", "samples_digit_a", "samples_digit_b"):
        widget(app, key)
    # samples beside real digits, the interpolation strip, the round-trip digits
    assert len(app.image) == 4
    errors = {metric.label: float(metric.value) for metric in app.metric}
    assert errors["Max |error|, float64"] < 1e-9 < errors["Max |error|, float32"] < 1e-3
    assert len(app.get("plotly_chart")) == 1  # the histogram
    widget(app, "samples_temperature").set_value(0.5)
    widget(app, "samples_count").set_value(9).run()
    assert not app.exception


def test_export_button_downloads_a_zip_that_reloads_the_same_model(mnist_run, tmp_path, monkeypatch) -> None:
    data_dir, runs_dir, _ = mnist_run
    app = samples_page(data_dir, runs_dir, monkeypatch)
    (button,) = [b for b in app.get("download_button") if b.proto.label == "Export model (safetensors)"]
    assert button.proto.url or button.proto.deferred_file_id  # a file to fetch, built on click
    zipfile.ZipFile(io.BytesIO(samples_view.export_archive(runs_dir / "digits", "last"))).extractall(tmp_path)
    loaded, _ = load_export(tmp_path)
    model, _ = runs.load_run_model(runs_dir / "digits", "last")
    x = sampling.pixels_to_unit(load_mnist(data_dir, "test")[0][:8])
    with torch.no_grad():
        assert torch.equal(loaded.logProbability(x), model.logProbability(x))


def test_without_mnist_on_disk_an_image_run_still_samples(mnist_run, tmp_path, monkeypatch) -> None:
    _, runs_dir, _ = mnist_run
    app = samples_page(tmp_path / "empty", runs_dir, monkeypatch)
    assert not app.exception
    assert len(app.image) == 1  # the model's samples
    assert sum("download MNIST on the Home page" in info.value for info in app.info) >= 3


def test_a_toy_run_shows_densities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(dataset="spiral", hidden=[8], blocks=2, batch_size=16, steps=5, toy_points=64)
    train_in_folder(config, runs.create_run(tmp_path / "runs", config, name="spiral"))
    app = samples_page(tmp_path / "empty", tmp_path / "runs", monkeypatch)
    assert not app.exception
    assert len(app.image) == 2  # model and real densities
    assert any("applies to image runs" in caption.value for caption in app.caption)


def test_per_image_bits_per_dim_average_to_the_trainers_test_score(mnist_run) -> None:
    data_dir, runs_dir, evaluation = mnist_run
    model, config = runs.load_run_model(runs_dir / "digits")
    images, _ = load_mnist(data_dir, "test")
    values = sampling.image_bits_per_dim(model, images[-config.holdout :], batch_size=config.eval_batch_size)
    assert values.shape == (1000,)
    assert float(values.mean()) == pytest.approx(evaluation.test_bits_per_dim, rel=1e-5)


def test_temperature_seed_and_interpolation(mnist_run) -> None:
    _, runs_dir, _ = mnist_run
    model, _ = runs.load_run_model(runs_dir / "digits")
    cold = sampling.sample(model, 4, temperature=0.0, seed=3)
    torch.testing.assert_close(cold, cold[:1].expand(4, -1))  # T = 0: every sample is F(prior centre)
    torch.testing.assert_close(sampling.sample(model, 4, 0.7, seed=5), sampling.sample(model, 4, 0.7, seed=5))
    assert not torch.equal(sampling.sample(model, 4, 0.7, seed=5), sampling.sample(model, 4, 0.7, seed=6))
    x = sampling.pixels_to_unit(load_mnist(mnist_run[0], "test")[0][:2])
    path = sampling.interpolate(model, x[0], x[1], points=5)
    assert path.shape == (5, 784)
    torch.testing.assert_close(path[[0, -1]], x, atol=1e-4, rtol=0)  # the ends decode to the two digits


def test_the_judge_scores_samples_beside_real_digits(mnist_run, judge_cache, monkeypatch) -> None:
    data_dir, runs_dir, _ = mnist_run
    app = samples_page(data_dir, runs_dir, monkeypatch)  # no judge cached for this data folder yet
    assert not app.exception
    assert any(button.key == "samples_train_judge" for button in app.button)
    assert not app.dataframe
    _, cache, _ = judge_cache
    monkeypatch.setenv("FLOWLAB_JUDGE_DIR", str(cache))
    app = samples_page(data_dir, runs_dir, monkeypatch)
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table[""]) == ["model samples", "real held-out images"]
    assert list(table["images"]) == [500, 500]
    real_recognised = float(table["recognised"][1].rstrip("%"))
    assert real_recognised >= 85 > float(table["recognised"][0].rstrip("%"))  # 20 steps do not draw digits
