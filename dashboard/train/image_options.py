"""The Train page's settings for the image-shaped flow families (ConvRealNVP, Glow): scales, steps,
conditioner width, class conditioning, with the family's preset for this machine as the defaults."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.services.form_limits import FORM_MAXIMA
from flows.registry import FlowFamily
from flows.training import TrainConfig
from flows.training.factory import device_kind


def preset(family: FlowFamily) -> dict[str, Any]:
    """The family's preset for this machine (its GPU one where CUDA is available, else its CPU one)."""
    return family.preset(device_kind("auto"))


def image_options(family: FlowFamily, slots: dict[str, Any]) -> dict[str, Any]:
    """Draws the widgets of ``family``'s image options; returns the TrainConfig values they hold.

    Each widget's key carries the family's name, so switching families shows that family's defaults.
    ``slots`` receives an empty slot under each widget for its error.
    """
    defaults = {**TrainConfig().to_dict(), **preset(family)}
    key = family.name.replace("-", "_")
    left, right = st.columns(2)
    values: dict[str, Any] = {}
    numbers = [
        ("levels", "Scales (levels)", 1, left),
        ("steps_per_level", "Steps per scale", 1, right),
        ("hidden_channels", "Conditioner channels", 4, left),
    ]
    if "residual_blocks" in family.options:
        numbers.append(("residual_blocks", "Residual blocks", 0, right))
    for name, label, low, column in numbers:
        high = int(FORM_MAXIMA[name])
        values[name] = int(
            column.number_input(
                label, low, high, int(defaults[name]), key=f"train_{key}_{name}", help=TrainConfig.help(name)
            )
        )
        slots[name] = column.empty()
    values["conditional"] = st.checkbox(
        "Class-conditional (draw the digit you ask for)",
        bool(defaults["conditional"]),
        key=f"train_{key}_conditional",
        help=TrainConfig.help("conditional"),
    )
    slots["conditional"] = st.empty()
    values["amp"] = st.checkbox(
        "bfloat16 autocast",
        bool(defaults["amp"]),
        key=f"train_{key}_amp",
        help=TrainConfig.help("amp") + " (this family's preset turns it on where it measured faster)",
    )
    slots["amp"] = st.empty()
    if "batch_size" in preset(family):
        values["batch_size"] = int(preset(family)["batch_size"])
    return values
