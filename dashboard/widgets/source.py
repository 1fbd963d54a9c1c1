"""Tabs of real source code, read from the running modules with ``inspect`` (never a pasted copy)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

from dashboard.model.view import source_of


def source_tabs(sources: Mapping[str, Callable | type]) -> None:
    """One tab per entry: the object's file, first line and source, with line numbers."""
    for tab, obj in zip(st.tabs(list(sources)), sources.values(), strict=True):
        with tab:
            source = source_of(obj)
            st.caption(f"`{source.path}`, from line {source.first_line}")
            st.code(source.code, language="python", line_numbers=True)
