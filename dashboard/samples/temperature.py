"""Temperature on the Samples page: what it does to each family's samples, said and measured."""

from __future__ import annotations

import streamlit as st

from dashboard.services.state import run_model
from flows import registry, sampling
from flows.image.models import grid_labels
from flows.training import TrainConfig

#: The digit picker's choice that draws every class in turn, one per column.
EVERY_CLASS = -1

_MLP_NOTE = (
    "T < 1 draws latents nearer the prior's centre. For {name} on flattened pixels that only dims the "
    "samples: the dark background turns grey and no cleaner digit appears, and the model finds them no "
    "more likely (its bits/dim of its own samples stay level or rise as T falls; measured below). Its "
    "latent does not separate stroke from noise, so shrinking it shrinks both."
)
_MULTISCALE_NOTE = (
    "T < 1 draws latents nearer the prior's centre. For {name}, a multi-scale image flow, it works on the "
    "background: more of it is dark and clean, and the model finds its samples more likely (fewer "
    "bits/dim; measured below). The strokes depend on training: a 2,500-step run's survive T = 0.7 (the "
    "README's grids are drawn there), while a short run's faint strokes fade with the noise (the shipped "
    "600- and 800-step examples' strokes fade away below T = 0.6)."
)
#: For every family on a 2D toy.
TOY_TEMPERATURE_NOTE = "T < 1 draws latents nearer the prior's centre: points gather on the densest parts."
#: Samples measured at each temperature for the note's numbers.
EFFECT_SAMPLES = 100


def temperature_note(config: TrainConfig) -> str:
    """The note for ``config``'s family and data: by its kind (flattened MLP or multi-scale image flow)."""
    if not config.is_image:
        return TOY_TEMPERATURE_NOTE
    family = registry.get_family(config.model)
    if family.image_shaped:
        return _MULTISCALE_NOTE.format(name=family.title)
    return _MLP_NOTE.format(name=f"{family.title} (MLP couplings)")


@st.cache_data(show_spinner=False, max_entries=32)
def _effect(run_path: str, which: str, modified: float, temperature: float, seed: int, digit: int):
    model, _ = run_model(run_path, which)
    labels = None
    if sampling.is_conditional(model):
        labels = grid_labels(model, EFFECT_SAMPLES) if digit == EVERY_CLASS else digit
    return sampling.temperature_effect(model, temperature, EFFECT_SAMPLES, seed, labels)


def effect_caption(path: str, which: str, modified: float, temperature: float, seed: int, digit: int) -> str:
    """The measured effect of ``temperature`` beside T = 1: the model's bits/dim of its samples, pixels."""
    shown = [1.0] if temperature == 1.0 else [1.0, temperature]
    parts = []
    for value in shown:
        effect = _effect(path, which, modified, value, seed, digit)
        parts.append(
            f"T = {value:g}: {effect.bits_per_dim:.2f} bits/dim, {effect.dark_share:.0%} dark, "
            f"{effect.grey_share:.0%} grey"
        )
    return (
        f"Measured on {EFFECT_SAMPLES} samples of this run (the model's median bits/dim of its own samples; "
        f"pixels < {sampling.DARK_PIXEL:g} dark, {sampling.GREY_PIXELS[0]:g} to {sampling.GREY_PIXELS[1]:g} "
        "grey): " + " · ".join(parts) + "."
    )
