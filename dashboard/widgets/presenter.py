"""Presenter mode: larger text and digit grids on a dark, high-contrast theme, for a projector.

A teacher switches it on once in the sidebar. It lives in the session (``st.session_state``) and in the
URL (``?presenter=1``), so it stays on across pages, reloads and copied links. Streamlit's theme is fixed
by its config at start-up, so the mode is a style sheet injected on every page plus a Plotly template
applied to every chart through :func:`plotly_chart` (and :func:`style` for the live charts).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

#: The session-state key of the sidebar toggle and the URL's query parameter.
KEY = "presenter"
#: Root font size in presenter mode (Streamlit sizes its text in rem): 125% of the browser's 16 px.
FONT_SCALE = 1.25
#: How much larger digit grids are drawn in presenter mode.
GRID_SCALE = 2
BACKGROUND, PANEL, TEXT, ACCENT = "#000000", "#16181d", "#ffffff", "#ffd400"

STYLE = f"""
<style>
html {{ font-size: {FONT_SCALE * 100:.0f}%; }}
.stApp, [data-testid="stHeader"], [data-testid="stBottomBlockContainer"] {{
  background-color: {BACKGROUND}; color: {TEXT};
}}
[data-testid="stSidebar"], [data-testid="stSidebarContent"] {{ background-color: {PANEL}; color: {TEXT}; }}
.stApp p, .stApp li, .stApp label, .stApp span, .stApp h1, .stApp h2, .stApp h3, .stApp h4,
.stApp [data-testid="stMarkdownContainer"], .stApp [data-testid="stCaptionContainer"],
.stApp [data-testid="stMetricValue"], .stApp [data-testid="stMetricLabel"] {{ color: {TEXT}; }}
.stApp a {{ color: {ACCENT}; }}
.stApp code {{ color: {ACCENT}; background-color: {PANEL}; }}
.stApp input, .stApp textarea, .stApp [data-baseweb="select"] > div, .stApp [data-baseweb="input"] {{
  background-color: {PANEL}; color: {TEXT}; border-color: #888888;
}}
.stApp button {{ background-color: {PANEL}; color: {TEXT}; border-color: #aaaaaa; }}
.stApp button[kind="primary"] {{ background-color: {ACCENT}; color: #000000; }}
.stApp button[kind="primary"] p {{ color: #000000; }}
.stApp [data-testid="stVerticalBlockBorderWrapper"] {{ border-color: #666666; }}
.stApp .katex {{ color: {TEXT}; }}
/* st.info / warning / error boxes: a light pastel by default, unreadable under white text */
.stApp [data-testid="stAlertContainer"] {{
  background-color: {PANEL}; color: {TEXT}; border: 1px solid {ACCENT};
}}
.stApp [data-testid="stAlertContainer"] * {{ color: {TEXT}; }}
/* st.dataframe draws its cells on a canvas in the light theme: inverted, hues kept */
.stApp [data-testid="stDataFrame"] {{ filter: invert(1) hue-rotate(180deg); }}
.stApp [data-testid="stTable"] th, .stApp [data-testid="stTable"] td {{
  background-color: {PANEL}; color: {TEXT}; border-color: #666666;
}}
/* drop-down lists, popovers and tooltips open outside the app's tree, at the end of the page */
[data-testid$="VirtualDropdown"], [data-baseweb="popover"] ul, [data-baseweb="popover"] li,
[data-testid="stPopoverBody"], [data-testid="stTooltipContent"] {{
  background-color: {PANEL}; color: {TEXT};
}}
[data-testid$="VirtualDropdown"] [role="option"]:hover,
[data-testid$="VirtualDropdown"] [aria-selected="true"], [data-baseweb="popover"] li:hover {{
  background-color: #33363d;
}}
[data-testid$="VirtualDropdown"] *, [data-testid="stPopoverBody"] *, [data-testid="stTooltipContent"] * {{
  color: {TEXT};
}}
.stApp [data-testid="stTooltipHoverTarget"] svg, .stApp [data-testid="stTooltipIcon"] svg {{
  color: {TEXT}; stroke: {TEXT};
}}
.stApp [data-testid="stTooltipHoverTarget"], .stApp [data-testid="stTooltipIcon"] button {{
  background-color: transparent; border: none;
}}
/* the larger text wraps instead of being cut short with "..." */
.stApp [data-testid="stMetricValue"] > div, .stApp [data-testid="stMetricLabel"] p,
.stApp [data-testid="stWidgetLabel"] p, .stApp label[data-baseweb="checkbox"] p {{
  white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere;
}}
</style>
"""


def is_on() -> bool:
    """Whether presenter mode is on in this session (first run: as the URL's ``?presenter=1`` says)."""
    if KEY not in st.session_state:
        st.session_state[KEY] = st.query_params.get(KEY) == "1"
    return bool(st.session_state[KEY])


def sidebar_toggle() -> None:
    """The sidebar switch; then the page's style and the URL follow the mode (call once per run)."""
    is_on()  # the first run takes the mode from the URL
    st.toggle(
        "Presenter mode",
        key=KEY,
        help="Large text and digit grids on a dark, high-contrast theme, for a projector. "
        "Stays on across pages; the URL keeps it (?presenter=1).",
    )
    on = bool(st.session_state[KEY])
    if on:
        st.query_params[KEY] = "1"
        st.html(STYLE)
    elif st.query_params.get(KEY) is not None:
        del st.query_params[KEY]


def grid_zoom(zoom: int) -> int:
    """Screen pixels per digit pixel: ``zoom``, times GRID_SCALE in presenter mode."""
    return zoom * GRID_SCALE if is_on() else zoom


def style(figure: go.Figure) -> go.Figure:
    """``figure`` as presenter mode draws it (a dark template, larger fonts); unchanged when off."""
    if not is_on():
        return figure
    styled = go.Figure(figure)
    font_size = (styled.layout.font.size or 12) * FONT_SCALE
    styled.update_layout(
        template="plotly_dark",
        paper_bgcolor=BACKGROUND,
        plot_bgcolor=PANEL,
        font={"size": font_size, "color": TEXT},
        title_font_color=TEXT,
        legend_font_color=TEXT,
    )
    return styled


def plotly_chart(figure: go.Figure, **options: Any) -> Any:
    """``st.plotly_chart`` of ``style(figure)``; Streamlit's own theme only while presenter mode is off."""
    if is_on():
        options["theme"] = None
    return st.plotly_chart(style(figure), **options)
