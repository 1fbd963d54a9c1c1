"""The Model page's section on the image flows: a family's shapes scale by scale, its parameters, and the
source of its layers (read from the running code)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard.widgets.source import source_tabs
from flows import registry
from flows.image import ActNorm, ChannelCoupling, CheckerboardCoupling, FactorOut, InvertibleConv1x1, Squeeze
from flows.image.models import count_parameters
from flows.image.multiscale import scales
from flows.training import TrainConfig, build_model
from flows.training.factory import device_kind

IMAGE_SOURCES = {
    "Squeeze": Squeeze,
    "ActNorm": ActNorm,
    "InvertibleConv1x1": InvertibleConv1x1,
    "CheckerboardCoupling": CheckerboardCoupling,
    "ChannelCoupling": ChannelCoupling,
    "FactorOut": FactorOut,
}


def _shape(shape: list[int] | None) -> str:
    return "—" if shape is None else "×".join(map(str, shape))


def scale_table(config: TrainConfig) -> pd.DataFrame:
    """One row per scale of ``config``'s image flow: shapes in, after the squeeze, factored out, kept."""
    rows = []
    for scale in scales(build_model(config)):
        kept = None
        if scale.factored_shape is not None:
            kept = [scale.squeezed_shape[0] - scale.factored_shape[0], *scale.squeezed_shape[1:]]
        rows.append(
            {
                "scale": scale.depth,
                "input": _shape(scale.input_shape),
                "after squeeze": _shape(scale.squeezed_shape)
                + ("" if scale.squeezed_shape != scale.input_shape else " (no squeeze: odd size)"),
                "factored out": _shape(scale.factored_shape),
                "kept for the next scale": _shape(kept),
                "dims leaving here": math.prod(scale.factored_shape or scale.squeezed_shape),
                "parameters": scale.parameters,
            }
        )
    return pd.DataFrame(rows)


def image_flow_section() -> None:
    """Pick an image family and its sizes; see the data's shape at every scale and where each pixel goes."""
    st.subheader("Image flows: the shape of the data at every scale")
    families = registry.families("image")
    image_families = {f.label: f for f in families if f.image_shaped}
    left, right = st.columns([1, 2])
    with left:
        family = image_families[st.selectbox("Family", list(image_families), key="model_image_family")]
        preset = family.preset(device_kind("auto"))
        levels = st.slider("Scales (levels)", 1, 4, int(preset.get("levels", 2)), key="model_image_levels")
        steps = st.slider(
            "Steps per scale", 1, 8, int(preset.get("steps_per_level", 4)), key="model_image_steps"
        )
        channels = st.select_slider(
            "Conditioner channels", [8, 16, 32, 64, 128], int(preset.get("hidden_channels", 64)),
            key="model_image_channels",
        )  # fmt: skip
    config = TrainConfig(
        model=family.name, levels=levels, steps_per_level=steps, hidden_channels=channels,
        residual_blocks=int(preset.get("residual_blocks", 1)),
    )  # fmt: skip
    with right:
        table = scale_table(config)
        st.dataframe(table, hide_index=True, key="model_image_scales")
        total = count_parameters(build_model(config))
        leaving = int(table["dims leaving here"].sum())
        st.caption(
            f"{family.label}: {total:,} parameters; the {leaving} dims leaving the scales add up to the 784 "
            "pixels of a digit. Each scale squeezes 2×2 patches into channels (log|det| 0), runs its steps, "
            "then factors out half of its channels: their density is a Gaussian given the kept half, and "
            "the kept half goes on to the next, coarser scale. The latent z has the digit's shape 1×28×28."
        )
    source_tabs(IMAGE_SOURCES)
