"""The Jacobian page in AppTest: analytic and autograd log|det| agree to 1e-6; heatmaps, runs, derivation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.jacobian.view import (
    ANALYTIC,
    AUTOGRAD,
    DIFFERENCE,
    ModelSource,
    PointSpec,
    build_fresh_model,
    coupling_jacobian,
    data_point,
    signed_log_rgb,
)
from dashboard.widgets.maths import markdown_parts, read_doc
from flows import registry
from flows.training import TrainConfig, runs

from .apptest import open_page, use_folders
from .conftest import train_in_folder

TIMEOUT_S = 180
TOLERANCE = 1e-6


@pytest.fixture
def empty_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No MNIST and no runs: the state of a fresh clone."""
    use_folders(monkeypatch, tmp_path / "no-mnist", tmp_path / "runs")
    return tmp_path


def _jacobian_page() -> AppTest:
    return open_page("pages/jacobian.py", TIMEOUT_S)


def _check_table(at: AppTest) -> pd.DataFrame:
    """The rendered log|det| table, which the page also keeps in session state."""
    rendered = at.dataframe[0].value
    pd.testing.assert_frame_equal(rendered, at.session_state["jacobian_check"])
    return rendered


def _assert_agreement(table: pd.DataFrame) -> None:
    assert list(table.columns) == ["layer", ANALYTIC, AUTOGRAD, DIFFERENCE]
    assert table["layer"].iloc[-1] == "whole flow"
    difference = (table[ANALYTIC] - table[AUTOGRAD]).abs()
    assert (difference <= TOLERANCE).all(), table
    assert np.allclose(difference, table[DIFFERENCE], atol=1e-12)
    assert abs(table[ANALYTIC].iloc[:-1].sum() - table[ANALYTIC].iloc[-1]) < 1e-9


def test_real_digit_on_an_mnist_shaped_realnvp(
    monkeypatch: pytest.MonkeyPatch, mnist_dir: Path, tmp_path: Path
) -> None:
    use_folders(monkeypatch, mnist_dir, tmp_path / "runs")
    at = _jacobian_page()
    assert not at.exception
    assert at.selectbox(key="jacobian_model").value == "Fresh RealNVP"
    assert at.radio(key="jacobian_input").value == "MNIST test digit"
    assert at.number_input(key="jacobian_digit").value == 0
    table = _check_table(at)
    _assert_agreement(table)
    assert len(table) == 2 * 2 + 2  # two blocks of (f1, f0), the logit layer, the whole flow
    assert table["layer"].iloc[-2].startswith("4: logit")
    assert (table[ANALYTIC].abs() > 1e-3).all(), "a randomised model must give non-trivial log-dets"
    assert "All 6 rows agree" in at.success[0].value
    labels = [metric.label for metric in at.metric]
    assert any(label.startswith("Analytic") for label in labels)
    assert any(label.startswith("Autograd (") for label in labels)
    assert len(at.get("plotly_chart")) == 3  # the two readable n = 8 couplings and the 784 x 784 one
    display_blocks = [body for kind, body in markdown_parts(read_doc("jacobian.md")) if kind == "latex"]
    assert [element.value.strip("$\n") for element in at.latex] == display_blocks  # the derivation tab

    at.number_input(key="jacobian_digit").set_value(7).run()
    assert not at.exception
    other = _check_table(at)
    _assert_agreement(other)
    assert other[ANALYTIC].iloc[-1] != table[ANALYTIC].iloc[-1], "another digit gives another log|det|"


def test_without_mnist_nice_at_n_8_with_a_random_point(empty_dirs: Path) -> None:
    at = _jacobian_page()
    assert not at.exception
    assert at.radio(key="jacobian_input").options == ["Random point"]
    assert any("No trained runs" in caption.value for caption in at.caption)
    at.selectbox(key="jacobian_model").set_value("Fresh NICE").run()
    at.selectbox(key="jacobian_dims").set_value(8).run()
    assert not at.exception
    table = _check_table(at)
    _assert_agreement(table)
    couplings = table[table["layer"].str.contains("f[01]:")]
    assert len(couplings) == 4 and (couplings[ANALYTIC] == 0).all()  # additive couplings preserve volume
    assert table["layer"].iloc[-2].startswith("4: scaling") and table[ANALYTIC].iloc[-2] != 0

    at.toggle(key="jacobian_identity").set_value(True).run()
    identity = _check_table(at)
    _assert_agreement(identity)
    assert (identity[ANALYTIC] == 0).all(), "as initialised for training, a flow is the identity"


def test_a_trained_run_is_listed_and_checked(empty_dirs: Path) -> None:
    config = TrainConfig(
        model="realnvp", dataset="moons", blocks=1, hidden=[8], steps=4, batch_size=32, eval_every=0,
        checkpoint_every=0, toy_points=256, warmup_steps=0, sample_count=4,
    )  # fmt: skip
    run_path = runs.create_run(empty_dirs / "runs", config, name="tiny-moons")
    train_in_folder(config, run_path)
    at = _jacobian_page()
    assert "Run tiny-moons" in at.selectbox(key="jacobian_model").options
    at.selectbox(key="jacobian_model").set_value("Run tiny-moons").run()
    assert not at.exception
    assert at.radio(key="jacobian_checkpoint").value == "best"  # best.pt is offered first
    table = _check_table(at)
    _assert_agreement(table)
    assert len(table) == 3  # f1, f0, whole flow of a 2D model


def test_coupling_heatmap_matrix_is_block_triangular_in_xy_order() -> None:
    source = ModelSource(dims=784, blocks=1, hidden=16)
    model = build_fresh_model(source)
    x = data_point(model, PointSpec("random", seed=2), None)
    for index, zero in ((0, "xy"), (1, "yx")):  # f1 keeps x: dx'/dy = 0; f0 keeps y: dy'/dx = 0
        jac = coupling_jacobian(model, x, index)
        blocks = jac.blocks()
        assert jac.split == "checkerboard" and jac.matrix.shape == (784, 784)
        assert not blocks[zero].any()
        changed = blocks["yy" if jac.changes == "y" else "xx"]
        assert abs(np.log(np.abs(np.diag(changed))).sum() - jac.analytic_log_abs_det) < 1e-9
        facts = jac.facts().set_index("block")["value"]
        assert facts.iloc[0] == 0 and facts.iloc[1] == 0 and facts.iloc[2] == 0 and facts.iloc[3] > 0


def test_signed_log_colours_keep_exact_zeros_white() -> None:
    rgb = signed_log_rgb(np.array([[0.0, 1e-5], [-2.0, 3.0]]))
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[1, 0, 2] == 255 and rgb[1, 0, 0] < 255  # negative: blue
    assert rgb[1, 1, 0] == 255 and rgb[1, 1, 2] < 255  # positive: red
    assert rgb[0, 1].tolist() != [255, 255, 255]  # tiny but non-zero still shows


def test_derivation_renders_every_display_block_with_latex() -> None:
    text = read_doc("jacobian.md")
    parts = markdown_parts(text)
    latex = [body for kind, body in parts if kind == "latex"]
    assert len(latex) == text.count("$$") // 2 and text.count("$$") % 2 == 0
    assert all("$$" not in body for kind, body in parts)
    assert any(
        r"\frac{\partial sv}{\partial y}" in body or r"\dfrac{\partial sv}{\partial y}" in body
        for body in latex
    )
    inline_dollars = [len(re.findall(r"(?<!\\)\$", body)) for kind, body in parts if kind == "markdown"]
    assert all(count % 2 == 0 for count in inline_dollars), "an inline $ is left unclosed"


@pytest.mark.parametrize("family", ["glow", "conv-realnvp"])
def test_every_layer_of_a_fresh_image_flow_agrees_with_autograd(empty_dirs: Path, family: str) -> None:
    at = _jacobian_page()
    title = next(f.title for f in registry.families() if f.name == family)
    at.selectbox(key="jacobian_model").set_value(f"Fresh {title}").run()
    assert not at.exception
    assert at.selectbox(key="jacobian_image_dims").value == 64  # 1x8x8 by default: quick
    table = _check_table(at)
    _assert_agreement(table)
    names = " ".join(table["layer"])
    assert "squeeze" in names and "actnorm" in names and "factor out" in names and "logit" in names
    if family == "glow":
        assert "1x1 conv" in names and "channel coupling" in names
    else:
        assert "checkerboard coupling" in names
    couplings = table[table["layer"].str.contains("coupling")]
    assert (couplings[ANALYTIC].abs() > 1e-6).all(), "a randomised flow must give non-trivial log-dets"
    # "Inside one layer": the leaf picked shows its full 64 x 64 Jacobian and both log|det| values
    leaves = at.selectbox(key="jacobian_leaf")
    wanted = next(i for i, name in enumerate(leaves.options) if "actnorm" in name)
    leaves.set_value(leaves.options[wanted]).run()
    assert not at.exception
    values = {metric.label: metric.value for metric in at.metric}
    analytic, autograd = values["analytic log|det|"], values["slogdet of this Jacobian (float64)"]
    assert abs(float(analytic) - float(autograd)) < 1e-6
    assert any("Diagonal" in block.value for block in at.markdown)
