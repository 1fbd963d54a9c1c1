"""The Model page in AppTest: the seed's MLP presets, parameter counts, forward pass, bad specs, source."""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard.model.view import build_mlp, forward, mlp_input, parse_activations, parse_layer_sizes
from flows import MLP, AdditiveCoupling, AffineCoupling, Coupling, RealNVP
from flows.data import load_mnist

from .apptest import open_page, use_folders

TIMEOUT_S = 120


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_folders(monkeypatch, tmp_path / "no-mnist", tmp_path / "runs")


def _model_page() -> AppTest:
    return open_page("pages/model.py", TIMEOUT_S)


def _parameters(sizes: list[int]) -> int:
    """W [in, out] plus b [out] per layer."""
    return sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))


def test_discriminator_preset_on_a_real_digit(
    monkeypatch: pytest.MonkeyPatch, mnist_dir: Path, tmp_path: Path
) -> None:
    use_folders(monkeypatch, mnist_dir, tmp_path / "runs")
    at = _model_page()
    assert not at.exception
    assert at.text_input(key="model_sizes").value == "784, 50, 1"
    assert at.text_input(key="model_activations").value == "relu, sigmoid"
    assert at.metric[0].value == f"{_parameters([784, 50, 1]):,}"
    table = at.dataframe[0].value
    assert table["parameters"].tolist() == [784 * 50 + 50, 50 + 1, _parameters([784, 50, 1])]
    assert at.number_input(key="model_digit").value == 0

    images, _ = load_mnist(mnist_dir, "test")
    mlp = build_mlp([784, 50, 1], ["relu", "sigmoid"])
    x, _ = mlp_input(784, images[0], 0.0, 0)
    expected = float(forward(mlp, x)[0, 0])
    assert 0 < expected < 1
    assert at.metric[1].value == f"{expected:.4f}"  # the page ran the same net on the same digit


def test_generator_preset_draws_an_image(no_data: None) -> None:
    at = _model_page()
    at.button_group(key="model_preset").set_value("Generator 1 → 10 → 784").run()
    assert not at.exception
    assert at.text_input(key="model_sizes").value == "1, 10, 784"
    assert at.metric[0].value == f"{_parameters([1, 10, 784]):,}"
    assert at.slider(key="model_value").value == 0.5
    assert len(at.get("image")) == 1  # the 28 x 28 output


def test_bad_layer_sizes_show_a_message_not_a_traceback(no_data: None) -> None:
    at = _model_page()
    at.text_input(key="model_sizes").set_value("784, x, 1").run()
    assert not at.exception
    assert len(at.error) == 1 and "'x'" in at.error[0].value and "784, 50, 1" in at.error[0].value
    assert at.button_group(key="model_preset").value == "Custom"
    assert not at.metric

    at.text_input(key="model_sizes").set_value("784, 50, 1").run()
    at.text_input(key="model_activations").set_value("relu, sigmod").run()
    assert not at.exception
    assert len(at.error) == 1 and "'sigmod'" in at.error[0].value and "sigmoid" in at.error[0].value


def test_coupling_sources_are_the_running_code(no_data: None) -> None:
    at = _model_page()
    shown = [code.value.strip() for code in at.code]
    for obj in (Coupling, AdditiveCoupling, AffineCoupling, RealNVP):
        assert inspect.getsource(obj).strip() in shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("784, x, 1", "size 2 is 'x'"),
        ("784,,1", "size 2 is empty"),
        ("784", "at least an input and an output"),
        ("", "separated by commas"),
        ("784, -5, 1", "size 2 is '-5'"),
        ("784, 2.5, 1", "size 2 is '2.5'"),
    ],
)
def test_parse_layer_sizes_rejects_bad_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_layer_sizes(text)


def test_parse_layer_sizes_and_activations_build_the_seed_mlp() -> None:
    sizes = parse_layer_sizes(" 1 ; 10, 784 ")
    activations = parse_activations("ReLU, none", len(sizes) - 1)
    assert sizes == [1, 10, 784] and activations == ["relu", None]
    assert parse_activations("tanh", 3) == ["tanh"] * 3
    with pytest.raises(ValueError, match="2 layers need 2 activations"):
        parse_activations("relu, relu, relu", 2)
    mlp = build_mlp(sizes, activations)
    assert isinstance(mlp, MLP) and mlp(torch.zeros(4, 1)).shape == (4, 784)
    assert torch.equal(build_mlp(sizes, activations).last.weight, mlp.last.weight)  # seeded


def test_the_image_flow_section_shows_each_scale_and_where_every_pixel_goes(no_data: None) -> None:
    at = _model_page()
    assert not at.exception
    at.selectbox(key="model_image_family").set_value("Glow (multi-scale)").run()
    at.slider(key="model_image_levels").set_value(3).run()
    assert not at.exception
    table = next(frame.value for frame in at.dataframe if "after squeeze" in frame.value.columns)
    assert list(table["input"]) == ["1×28×28", "2×14×14", "4×7×7"]
    assert list(table["after squeeze"])[:2] == ["4×14×14", "8×7×7"]
    assert "no squeeze" in table["after squeeze"].iloc[2]
    assert table["dims leaving here"].sum() == 784
    assert any("parameters" in caption.value and "784" in caption.value for caption in at.caption)
