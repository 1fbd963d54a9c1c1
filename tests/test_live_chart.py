"""widgets/live_chart.py in a real Chromium: a new figure redraws the same chart in place, zoom kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import chromium, missing_browser, streamlit_server

APP = """
import plotly.graph_objects as go
import streamlit as st
from dashboard.widgets.live_chart import live_chart

st.session_state.setdefault("n", 1)
if st.button("More"):
    st.session_state.n += 1
n = st.session_state.n
st.write(f"points: {n}")
live_chart(go.Figure(go.Scatter(x=list(range(n)), y=[i * i for i in range(n)])), key="demo", height=300)
"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("live-chart")
    script = folder / "live_chart_app.py"
    script.write_text(APP)
    with streamlit_server(folder / "data", folder / "runs", folder, script=str(script)) as server:
        yield server.url


def _chart(page):
    frame = page.frame_locator("iframe[title*='live_chart']")
    return frame.locator("#chart")


@pytest.mark.browser
def test_a_new_figure_updates_the_same_chart_and_keeps_the_zoom(app_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(app_url)
        chart = _chart(page)
        chart.locator(".scatterlayer .trace").wait_for(timeout=90_000)
        assert chart.get_attribute("data-renders") == "1"
        # Mark the live div and zoom in; a remount would lose both.
        chart.evaluate(
            "el => { el.dataset.marker = 'same'; return Plotly.relayout(el, {'xaxis.range': [0, 0.5]}); }"
        )
        for clicks in range(2, 5):
            page.get_by_role("button", name="More").click()
            page.get_by_text(f"points: {clicks}").wait_for(timeout=60_000)
            page.wait_for_function(
                "n => { const f = document.querySelector(\"iframe[title*='live_chart']\");"
                " const el = f && f.contentDocument.getElementById('chart');"
                " return el && el.dataset.renders === String(n); }",
                arg=clicks,
                timeout=60_000,
            )
        assert chart.get_attribute("data-marker") == "same"  # the same div: no remount
        points = chart.evaluate("el => el.data[0].x.length")
        assert points == 4
        assert chart.evaluate("el => el.layout.xaxis.range") == [0, 0.5]  # zoom kept (uirevision)
