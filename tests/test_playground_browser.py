"""The Playground page in a real Chromium: Play makes the loss advance and the heatmap change; Pause stops it.

The helpers here are also for the dashboard's end-to-end test: open the page with
:func:`open_playground`, press the button named :data:`PLAY_BUTTON`, read the step and loss from the
element :data:`STATUS_SELECTOR` (a row of st.metric tiles: "training", "Step" 1,234, "Loss (nats)"
2.345, ...) with :func:`read_status`, and screenshot :data:`DENSITY_SELECTOR` to see the heatmap
change. :func:`play_playground` does all of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.browser import chromium, missing_browser, streamlit_server

PLAY_BUTTON = "Play"  # get_by_role("button", name=...)
PAUSE_BUTTON = "Pause"
STATUS_SELECTOR = ".st-key-pg_status"  # "paused"/"training", then metrics "Step" N, "Loss (nats)" X, ...
DENSITY_SELECTOR = ".st-key-pg_panel_density"  # the learned-density heatmap panel
LOSS_SELECTOR = ".st-key-pg_panel_loss"  # the loss-curve panel


def read_status(page) -> tuple[int, float | None, bool]:
    """(step, recent loss in nats or None before the first step, training?) from the status row."""
    text = page.locator(STATUS_SELECTOR).inner_text()
    step = int(re.search(r"Step\s+([\d,]+)", text).group(1).replace(",", ""))
    loss = re.search(r"Loss \(nats\)\s+(-?[\d.]+)", text)
    return step, float(loss.group(1)) if loss else None, "training" in text


def open_playground(page, base_url: str) -> None:
    """Opens the Playground page and waits until its heatmap is drawn.

    On a server that has served nothing yet, a first deep link runs pages/playground.py on its own
    (Streamlit's pages/ folder convention) before streamlit_app.py's router is known: the page works
    the same, only without the wide layout. Open the root first when the layout matters.
    """
    page.goto(base_url.rstrip("/") + "/playground")
    page.wait_for_selector(f"{DENSITY_SELECTOR} .js-plotly-plot", timeout=90_000)


def play_playground(page, base_url: str, seconds: float = 3.0) -> dict:
    """Opens the page, presses Play for ``seconds``, then Pause; returns what changed.

    Keys: step_before, step_after, loss_after, density_before, density_after (PNG bytes of the heatmap
    panel), paused_step (the step shown once paused).
    """
    open_playground(page, base_url)
    step_before, _, _ = read_status(page)
    density_before = page.locator(DENSITY_SELECTOR).screenshot()
    page.get_by_role("button", name=PLAY_BUTTON).click()
    page.wait_for_selector(f"{STATUS_SELECTOR}:has-text('training')", timeout=60_000)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or read_status(page)[0] <= step_before:
        assert time.monotonic() < deadline + 60, "the step counter never advanced"
        page.wait_for_timeout(250)
    step_after, loss_after, _ = read_status(page)
    density_after = page.locator(DENSITY_SELECTOR).screenshot()
    page.get_by_role("button", name=PAUSE_BUTTON).click()
    page.wait_for_selector(f"{STATUS_SELECTOR}:has-text('paused')", timeout=60_000)
    return {
        "step_before": step_before,
        "step_after": step_after,
        "loss_after": loss_after,
        "density_before": density_before,
        "density_after": density_after,
        "paused_step": read_status(page)[0],
    }


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``streamlit run streamlit_app.py`` on a free port of 127.0.0.1 (tests/browser.py starts it)."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("playground-browser")
    with streamlit_server(folder / "data", folder / "runs", folder) as server:
        yield server.url


@pytest.mark.browser
def test_play_advances_the_loss_and_changes_the_heatmap(dashboard_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        result = play_playground(page, dashboard_url, seconds=3.0)
        assert result["step_before"] == 0
        assert result["step_after"] > 0 and result["loss_after"] is not None
        assert result["density_after"] != result["density_before"]  # the heatmap was redrawn, changed
        paused = result["paused_step"]
        page.wait_for_timeout(1500)
        assert read_status(page)[0] == paused and not read_status(page)[2]  # paused means paused
