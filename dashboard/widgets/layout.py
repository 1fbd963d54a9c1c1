"""Page layouts shared by the pages that have a settings column (Train, Playground)."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator


def settings_and_main(main_width: float) -> tuple[DeltaGenerator, DeltaGenerator]:
    """Two columns with a large gap: a bordered settings box on the left (width 1), and the main column
    (width ``main_width``) on the right; use each in a ``with`` block."""
    settings, main = st.columns([1, main_width], gap="large")
    return settings.container(border=True), main
