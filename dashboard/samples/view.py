"""The Samples page's parts: pick any run's checkpoint, then samples at a temperature beside real digits,
latent interpolation between two test digits, the x -> z -> x round trip, and bits/dim per test digit."""

from __future__ import annotations

import functools
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from dashboard.samples.temperature import EVERY_CLASS, effect_caption, temperature_note
from dashboard.score_view import score_table
from dashboard.services import state
from dashboard.services.state import run_model, test_images, test_labels
from dashboard.text import plain
from dashboard.train.labels import DATASET_LABELS, model_label
from dashboard.widgets import charts, images, presenter
from flows import sampling
from flows.data import make_toy
from flows.data.toy import DEFAULT_NOISE
from flows.image.models import grid_labels
from flows.registry import get_family
from flows.training import RunInfo, TrainConfig, export_model, runs
from flows.training.examples import read_example
from flows.training.export import CONFIG_FILE, MODEL_FILE

#: Test digits encoded for the round trip.
ROUND_TRIP_DIGITS = 256
#: Samples scored by the judge (the real reference uses as many held-out images).
SCORE_SAMPLES = 500
#: Real 2D points drawn to show beside a toy model's samples.
TOY_POINTS = 20_000


# --- cached computations (keyed by the checkpoint file and its modification time) -------------------------


def _model(run_path: str, which: str):
    model, config = run_model(run_path, which)
    return model, config


@st.cache_data(show_spinner=False, max_entries=32)
def _samples(
    run_path: str, which: str, modified: float, temperature: float, seed: int, count: int, digit: int
) -> np.ndarray:
    model, config = _model(run_path, which)
    labels, columns = None, None
    if sampling.is_conditional(model):
        labels = grid_labels(model, count) if digit == EVERY_CLASS else digit
        columns = model.num_classes if digit == EVERY_CLASS else None
    x = sampling.sample(model, count, temperature, seed, labels)
    if config.is_image:
        return images.digit_grid(x.clamp(0, 1), columns=columns)
    return images.density(x)


def _classes(model, dataset: str, rows) -> torch.Tensor | None:
    """The true classes of test images ``rows`` for a conditional model, None for the others."""
    if not sampling.is_conditional(model):
        return None
    labels = test_labels(dataset)
    assert labels is not None
    return labels[rows]


@st.cache_data(show_spinner=False, max_entries=16)
def _score(run_path: str, which: str, modified: float, temperature: float, seed: int) -> dict[str, object]:
    model, config = _model(run_path, which)
    judge = state.judge(config.dataset)
    assert judge is not None
    x = sampling.sample(model, SCORE_SAMPLES, temperature, seed, grid_labels(model, SCORE_SAMPLES)).clamp(
        0, 1
    )
    return {
        "samples": judge.score(x).to_dict(),
        "real": judge.real_score(SCORE_SAMPLES).to_dict(),
        "accuracy": judge.accuracy,
    }


@st.cache_data(show_spinner=False, max_entries=16)
def _interpolation(
    run_path: str, which: str, modified: float, first: int, second: int, points: int
) -> np.ndarray:
    model, config = _model(run_path, which)
    digits = test_images(config.dataset)
    assert digits is not None
    x = sampling.pixels_to_unit(digits[[first, second]])
    classes = _classes(model, config.dataset, [first, second])
    ends = None if classes is None else (int(classes[0]), int(classes[1]))
    path = sampling.interpolate(model, x[0], x[1], points, ends).reshape(points, -1)
    strip = torch.cat([x[:1], path.clamp(0, 1), x[1:]])  # real A, decoded path, real B
    return images.digit_strip(strip, zoom=3)


@st.cache_data(show_spinner=False, max_entries=8)
def _round_trip(run_path: str, which: str, modified: float) -> dict[str, object]:
    model, config = _model(run_path, which)
    if config.is_image:
        digits = test_images(config.dataset)
        assert digits is not None
        x = sampling.pixels_to_unit(digits[:ROUND_TRIP_DIGITS])
    else:
        x = make_toy(config.dataset, ROUND_TRIP_DIGITS, seed=1)
    classes = _classes(model, config.dataset, slice(0, ROUND_TRIP_DIGITS)) if config.is_image else None
    single = sampling.round_trip(model, x, torch.float32, classes)
    double = sampling.round_trip(model, x, torch.float64, classes)
    shown = None
    if config.is_image:
        pairs = torch.stack([x[:8], single.rebuilt[:8].clamp(0, 1)])  # row 1: digits, row 2: F(F^-1(x))
        shown = images.digit_grid(pairs.reshape(16, 784), columns=8, zoom=3)
    return {
        "count": len(x),
        "float32": (single.max_error, single.mean_error),
        "float64": (double.max_error, double.mean_error),
        "image": shown,
    }


@st.cache_data(show_spinner=False, max_entries=8)
def _per_sample_scores(run_path: str, which: str, modified: float, count: int) -> np.ndarray:
    model, config = _model(run_path, which)
    if config.is_image:
        digits = test_images(config.dataset)
        assert digits is not None
        classes = _classes(model, config.dataset, slice(len(digits) - count, None))
        return sampling.image_bits_per_dim(model, digits[-count:], labels=classes).numpy()
    points = make_toy(config.dataset, count, seed=(config.seed + 1) % 2**63)
    return sampling.point_nll(model, points).numpy()


@st.cache_data(show_spinner=False, max_entries=4)
def _real_toy_density(dataset: str) -> np.ndarray:
    return images.density(make_toy(dataset, TOY_POINTS, noise=DEFAULT_NOISE[dataset], seed=0))


# --- the sections ----------------------------------------------------------------------------------------


def runs_with_checkpoints() -> list[RunInfo]:
    """Run folders holding a checkpoint, most recent first, then the shipped examples."""
    return state.runs_and_examples()


def choose_run(infos: list[RunInfo]) -> tuple[RunInfo, str]:
    """Run and checkpoint pickers; ``?run=<id>`` in the URL preselects a run."""
    ids = [info.run_id for info in infos]
    wanted = st.query_params.get("run")
    if "samples_run" not in st.session_state or st.session_state["samples_run"] not in ids:
        st.session_state["samples_run"] = wanted if wanted in ids else ids[0]
    left, right = st.columns([3, 1])
    labels = {info.run_id: info.label for info in infos}
    run_id = left.selectbox("Run", ids, format_func=labels.get, key="samples_run", on_change=_remember_run)
    info = infos[ids.index(run_id)]
    which = right.radio("Checkpoint", info.checkpoints, horizontal=True, key="samples_which")
    config = info.config
    assert config is not None
    st.caption(
        f"{model_label(config.model)} · {DATASET_LABELS[config.dataset]} · "
        f"{get_family(config.model).summary(config)} · step {info.step:,}"
        + ("" if info.test_bits_per_dim is None else f" · test {info.test_bits_per_dim:.3f} bits/dim")
    )
    if info.example:
        about = read_example(info.path)
        command = str(about.get("command", "")).replace("`", "")
        st.caption(
            f"A shipped example (read-only): {plain(about.get('description', ''))}. Trained by "
            f"`scripts/train_examples.py` as `{command}`."
        )
    return info, which or info.checkpoints[0]


def export_archive(run_path: str | Path, which: str) -> bytes:
    """A zip of ``model.safetensors`` and ``config.json`` for a run's checkpoint; unzipped, the folder
    loads with ``flows.training.load_export`` (JSON and safetensors only, no pickle)."""
    model, config = runs.load_run_model(run_path, which)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(buffer, "w") as archive:
        export_model(model, config, folder)
        for name in (MODEL_FILE, CONFIG_FILE):
            archive.write(Path(folder) / name, name)
    return buffer.getvalue()


def export_button(info: RunInfo, which: str) -> None:
    """Downloads the chosen checkpoint as safetensors + config.json (built only when clicked)."""
    st.download_button(
        "Export model (safetensors)",
        icon=":material/download:",
        data=functools.partial(export_archive, info.path, which),
        file_name=f"{info.run_id}-{which}-safetensors.zip",
        mime="application/zip",
        key="samples_export",
        on_click="ignore",
        help="model.safetensors and config.json of this checkpoint; unzip and load with "
        "flows.training.load_export(folder): no pickle, the same log-densities.",
    )


def _remember_run() -> None:
    st.query_params["run"] = st.session_state["samples_run"]


def samples_section(
    path: str, which: str, modified: float, config: TrainConfig, real_available: bool
) -> None:
    """Samples at a temperature, seed and count (and class, for a conditional flow), beside real data."""
    st.subheader("Samples")
    conditional = config.conditional
    controls, left, right = st.columns([1, 1.6, 1.6], gap="large")
    with controls:
        temperature = st.slider(
            "Temperature",
            0.0,
            1.5,
            1.0,
            0.05,
            key="samples_temperature",
            help="scales the prior's spread: z = T·z₀",
        )
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="samples_seed")
        count = st.slider("Count", 4, 100, 40 if conditional else 36, key="samples_count")
        digit = EVERY_CLASS
        if conditional:
            digit = st.selectbox(
                "Digit",
                [EVERY_CLASS, *range(10)],
                format_func=lambda k: "each class, one per column" if k == EVERY_CLASS else f"only {k}s",
                key="samples_digit",
                help="a class-conditional flow draws from p(x | class): pick the class",
            )
        st.caption(temperature_note(config))
        if config.is_image:
            st.caption(effect_caption(path, which, modified, float(temperature), int(seed), int(digit)))
    grid = _samples(path, which, modified, float(temperature), int(seed), int(count), int(digit))
    with left:
        st.markdown("**Model samples**")
        st.image(grid, width="stretch")
    with right:
        if config.is_image:
            st.markdown("**Real test digits**")
            digits = test_images(config.dataset)
            if real_available and digits is not None:
                st.image(images.digit_grid(digits[: int(count)]), width="stretch")
            else:
                st.info(
                    "Real digits are not on disk: download MNIST on the Home page.", icon=":material/info:"
                )
        else:
            st.markdown("**Real data**")
            st.image(_real_toy_density(config.dataset), width="stretch")


def score_section(path: str, which: str, modified: float, config: TrainConfig, available: bool) -> None:
    """The judge's score of samples at the temperature and seed chosen above, beside real images."""
    if not config.is_image or not available:
        return
    temperature = float(st.session_state.get("samples_temperature", 1.0))
    seed = int(st.session_state.get("samples_seed", 0))
    st.markdown(f"**Does it look like the data?** ({SCORE_SAMPLES} samples at temperature {temperature:g})")
    if not state.judge_ready(config.dataset) and not st.button(
        "Train the judge (once; under a minute on 2 cores)", key="samples_train_judge"
    ):
        st.caption("The judge is a small classifier trained on the real images the first time it is needed.")
        return
    with st.spinner("Scoring samples"):
        result = _score(path, which, modified, temperature, seed)
    score_table(
        result["samples"],
        result["real"],
        caption=f"The judge recognises {result['accuracy']:.1%} of held-out real images correctly.",
    )


def interpolation_section(
    path: str, which: str, modified: float, config: TrainConfig, available: bool
) -> None:
    """Encode two real test digits, walk the straight line between their latents, decode each point."""
    st.subheader("Latent interpolation")
    if not config.is_image:
        st.caption("Interpolation between digits applies to image runs.")
        return
    if not available:
        st.info("Needs real test digits: download MNIST on the Home page.", icon=":material/info:")
        return
    st.caption(
        "z = F⁻¹(x) for two real test digits; the strip decodes F((1−t)·z_A + t·z_B), real digits at the "
        "ends."
    )
    controls = st.columns(3)
    first = controls[0].number_input("Test digit A (index)", 0, 9999, 0, key="samples_digit_a")
    second = controls[1].number_input("Test digit B (index)", 0, 9999, 1, key="samples_digit_b")
    points = controls[2].slider("Points on the path", 3, 16, 10, key="samples_points")
    st.image(_interpolation(path, which, modified, int(first), int(second), int(points)), width="stretch")


def round_trip_section(path: str, which: str, modified: float, config: TrainConfig, available: bool) -> None:
    """The x -> z -> x error in float32 and float64: a flow is invertible up to rounding."""
    st.subheader("Reconstruction x → z → x")
    if config.is_image and not available:
        st.info("Needs real test digits: download MNIST on the Home page.", icon=":material/info:")
        return
    result = _round_trip(path, which, modified)
    what = "test digits" if config.is_image else "2D points"
    st.caption(
        f"F(F⁻¹(x)) against x for {result['count']} {what}: the flow is exact up to floating-point rounding."
    )
    columns = st.columns(4)
    for offset, dtype in ((0, "float32"), (2, "float64")):
        largest, mean = result[dtype]  # type: ignore[misc]
        columns[offset].metric(f"Max |error|, {dtype}", f"{largest:.1e}")
        columns[offset + 1].metric(f"Mean |error|, {dtype}", f"{mean:.1e}")
    if result["image"] is not None:
        st.image(
            result["image"], caption="top: test digits x · bottom: F(F⁻¹(x)) in float32", width="stretch"
        )


def histogram_section(path: str, which: str, modified: float, config: TrainConfig, available: bool) -> None:
    """Histogram of the model's bits/dim on each test digit (or nats on each 2D test point)."""
    if config.is_image:
        st.subheader("Bits/dim of each test digit")
        if not available:
            st.info("Needs real test digits: download MNIST on the Home page.", icon=":material/info:")
            return
        count = st.select_slider(
            "Test digits", [500, 1000, 2000, 5000, 10_000], 1000, key="samples_hist_count"
        )
        seen = config.holdout and count > config.holdout
        st.caption(
            f"The last {count:,} test digits, dequantized with fixed noise; low = the model finds the digit "
            "likely."
            + (
                f" Only the last {config.holdout:,} were held out: the others were trained on."
                if seen
                else ""
            )
        )
        values = _per_sample_scores(path, which, modified, int(count))
        figure = charts.histogram_figure(values, "bits / dim")
        presenter.plotly_chart(figure, key="samples_hist", width="stretch")
    else:
        st.subheader("Negative log density of test points")
        values = _per_sample_scores(path, which, modified, 5000)
        presenter.plotly_chart(
            charts.histogram_figure(values, "−log p(x)  (nats)", "points"),
            key="samples_hist",
            width="stretch",
        )


def samples_page() -> None:
    """The whole Samples page."""
    st.title("Samples")
    st.caption(
        "Look inside a trained flow: what it generates, how it moves between digits, how exactly it inverts."
    )
    infos = runs_with_checkpoints()
    if not infos:
        st.info(
            "No trained run yet. Start one on the **Train** page (a small RealNVP on MNIST digits needs "
            "about a minute), run `python main.py` in a terminal, or upload a checkpoint on the Train page.",
            icon=":material/arrow_back:",
        )
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    info, which = choose_run(infos)
    config = info.config
    assert config is not None
    checkpoint = runs.checkpoint_path(info.path, which)
    modified = checkpoint.stat().st_mtime
    path = str(info.path)
    try:
        _model(path, which)
    except (OSError, ValueError, RuntimeError) as error:
        st.error(
            plain(f"Cannot load {Path(checkpoint).name} of {info.run_id}: {error}"), icon=":material/error:"
        )
        return
    export_button(info, which)
    available = not config.is_image or test_images(config.dataset) is not None
    samples_section(path, which, modified, config, available)
    score_section(path, which, modified, config, available)
    st.divider()
    interpolation_section(path, which, modified, config, available)
    st.divider()
    left, right = st.columns(2, gap="large")
    with left:
        round_trip_section(path, which, modified, config, available)
    with right:
        histogram_section(path, which, modified, config, available)
