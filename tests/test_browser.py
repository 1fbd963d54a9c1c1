"""End to end in a real Chromium against a real ``streamlit run streamlit_app.py`` on 127.0.0.1.

A data folder built from the real MNIST test digits (no train split, as on this machine), a fresh runs
folder, then: deep links on freshly started servers, a RealNVP run on MNIST digits started, paused,
resumed and stopped from the browser while a second browser context watches and acts, a reload that
finds the run again, and every page rendered with a screenshot in docs/screenshots/e2e/.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from .browser import (
    LIVE_CHART_POINTS_JS,
    PAGES,
    REPO,
    StreamlitServer,
    exceptions_on_page,
    main_text,
    make_data_dir,
    metric_value,
    screenshot_whole_page,
    streamlit_server,
    wait_for_navigation,
)

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "docs" / "screenshots" / "e2e"
VIEWPORT = {"width": 1600, "height": 1000}
#: Milliseconds Playwright waits for something the page should show.
WAIT_MS = 60_000
T0 = time.monotonic()


@pytest.fixture(scope="module")
def data_dir(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_dir(mnist_dir, tmp_path_factory.mktemp("data") / "mnist")


def _step(page) -> int:
    value = metric_value(page, "Step")
    return int(value.replace(",", "")) if value.replace(",", "").isdigit() else -1


STEP_TILE_JS = """() => {
    const tiles = [...document.querySelectorAll('[data-testid="stMetric"]')];
    const label = t => t.querySelector('[data-testid="stMetricLabel"]').innerText.trim();
    const tile = tiles.find(t => label(t) === 'Step');
    if (!tile) return -1;
    return parseInt(tile.querySelector('[data-testid="stMetricValue"]').innerText.replace(/,/g, ''));
}"""


def _wait_step_above(page, floor: int) -> int:
    """Waits until the Step tile shows more than ``floor``; returns it."""
    page.wait_for_function(f"floor => ({STEP_TILE_JS})() > floor", arg=floor, timeout=WAIT_MS)
    return _step(page)


def _wait_step_equal(page, value: int) -> None:
    """Waits until the Step tile shows exactly ``value`` (a live view redraws once a second)."""
    page.wait_for_function(f"value => ({STEP_TILE_JS})() === value", arg=value, timeout=WAIT_MS)


def _curve_points(page) -> int:
    """Points of the train-loss line in the Train page's live chart (0 when none)."""
    return page.evaluate(LIVE_CHART_POINTS_JS)


def _run_header(page, run_id: str):
    return page.locator("h4", has_text=run_id)


def _button(page, label: str):
    # In the page, not the header: Streamlit's header shows its own "Stop" while a script reruns.
    main = page.get_by_test_id("stMainBlockContainer")
    return main.get_by_role("button", name=re.compile(rf"{re.escape(label)}$"))


def _log(what: str) -> None:
    print(f"{time.monotonic() - T0:6.1f} s  {what}")


def _shoot(page, name: str) -> None:
    _log(f"screenshot {name}")
    screenshot_whole_page(page, SCREENSHOTS / f"{name}.png")


def _open_page(page, title: str) -> None:
    """Clicks ``title`` in the sidebar navigation and waits until it is the current page."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    wait_for_navigation(page, title)
    heading = "Flow Lab" if title == "Home" else title  # the Home page's heading is the app's name
    page.get_by_role("heading", name=re.compile(heading)).first.wait_for(timeout=WAIT_MS)


def _settle(page) -> None:
    """Waits until Streamlit has no script run in progress (the status widget disappears)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=WAIT_MS)


def test_deep_links_on_fresh_servers(browser, data_dir: Path, tmp_path: Path) -> None:
    """Each page opened by its URL as the FIRST visit of a fresh server gets the same navigation as from /.

    /home included, with no "Page not found" dialog (issue 15); / switches to Home at /home.

    (Streamlit starts in its legacy pages/ mode until st.navigation first runs; see dashboard/__init__.py.)
    The six servers start together and are visited together, to keep the test short.
    """
    servers = [
        StreamlitServer(data_dir, tmp_path / f"runs-{name}", tmp_path / f"{name}.log") for name in PAGES
    ]
    context = browser.new_context(viewport=VIEWPORT)
    try:
        opened = []
        for server, url_path in zip(servers, PAGES, strict=True):
            server.wait_healthy()
            page = context.new_page()
            page.goto(f"{server.url}/{url_path}", timeout=WAIT_MS)  # six fresh servers load a busy CPU
            opened.append(page)
        for page, server, (url_path, title) in zip(opened, servers, PAGES.items(), strict=True):
            assert wait_for_navigation(page, title) == list(PAGES.values())
            shown_path = page.url.split("?")[0].removeprefix(server.url).strip("/")
            assert shown_path == url_path  # every page keeps its own URL; / switches to Home
            assert page.get_by_text("Page not found").count() == 0, f"/{url_path}: Page not found"
        root = context.new_page()  # a later visit of / lands on Home at /home, with no dialog either
        root.goto(servers[0].url, timeout=WAIT_MS)
        assert wait_for_navigation(root, "Home") == list(PAGES.values())
        root.wait_for_url(f"{servers[0].url}/home*", timeout=WAIT_MS)
        assert root.get_by_text("Page not found").count() == 0
    finally:
        context.close()
        for server in servers:
            server.stop()


def test_train_pause_resume_stop_reload_two_tabs_and_every_page(
    browser, data_dir: Path, tmp_path: Path
) -> None:
    runs_dir = tmp_path / "runs"
    with streamlit_server(data_dir, runs_dir, tmp_path) as server:
        first = browser.new_context(viewport=VIEWPORT)
        second = browser.new_context(viewport=VIEWPORT)
        try:
            _train_flow(first, second, server.url, runs_dir)
        finally:
            first.close()
            second.close()
        assert "Traceback" not in server.log_tail(200_000), server.log_tail()


def _train_flow(first, second, url: str, runs_dir: Path) -> None:
    page = first.new_page()
    page.goto(url, timeout=WAIT_MS)
    wait_for_navigation(page, "Home")
    _open_page(page, "Train")
    page.get_by_text("Only MNIST's 10,000 test images").wait_for(timeout=WAIT_MS)  # 9,000 train, 1,000 test

    # A small RealNVP on MNIST digits (tiny hidden layers: fast on a CPU).
    hidden = page.get_by_role("textbox", name="Hidden sizes")
    hidden.fill("16")
    hidden.press("Enter")
    for label, value in (("Steps", "20000"), ("Batch size", "32"), ("Test every (steps)", "100")):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(value)
        field.press("Enter")
    _settle(page)
    _button(page, "Start training").click()
    page.wait_for_url(re.compile(r"[?&]run="), timeout=WAIT_MS)
    run_id = re.search(r"[?&]run=([^&]+)", page.url).group(1)
    assert (runs_dir / run_id / "config.json").is_file()
    header = _run_header(page, run_id)
    header.wait_for(timeout=WAIT_MS)

    # The step counter and the loss curve advance by themselves (the page is not touched).
    step = _wait_step_above(page, 5)
    points = _curve_points(page)
    step = _wait_step_above(page, step + 20)
    page.wait_for_function(
        f"n => ({LIVE_CHART_POINTS_JS})() > n",
        arg=points,
        timeout=WAIT_MS,
    )
    page.get_by_text(re.compile(r"Step [\d,]+ / 20,000 · [\d,]+ images/s · ETA")).wait_for(timeout=WAIT_MS)
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=WAIT_MS)  # live samples
    _shoot(page, "train")

    _log("Second context")
    # A second browser context (another user, or a tab after closing this one) sees the same run.
    other = second.new_page()
    other.goto(f"{url}/train", timeout=WAIT_MS)
    _run_header(other, run_id).wait_for(timeout=WAIT_MS)
    assert run_id in other.url
    _wait_step_above(other, step)

    _log("Pause")
    # Pause in the second context: the first sees it, and training stops advancing.
    _button(other, "Pause").click()
    header.filter(has_text="paused").wait_for(timeout=WAIT_MS)
    status = json.loads((runs_dir / run_id / "status.json").read_text())
    assert status["state"] == "paused"  # the training thread itself wrote it, waiting
    paused_at = status["step"]
    _wait_step_equal(page, paused_at)
    _wait_step_equal(other, paused_at)  # both contexts show the step where training waits
    page.wait_for_timeout(2500)
    assert _step(page) == paused_at, "the step counter moved while paused"
    assert json.loads((runs_dir / run_id / "status.json").read_text())["step"] == paused_at

    _log("Resume")
    # Resume in the first: both advance again.
    _button(page, "Resume").click()
    _run_header(other, run_id).filter(has_text="running").wait_for(timeout=WAIT_MS)
    _wait_step_above(page, paused_at)
    _wait_step_above(other, paused_at)

    _log("Reload")
    # A reload reattaches to the same run (its id is in the URL).
    page.reload(timeout=WAIT_MS)
    wait_for_navigation(page, "Train")
    _run_header(page, run_id).filter(has_text="running").wait_for(timeout=WAIT_MS)

    _log("Close every tab")
    # Closing every tab does not stop the run: a new tab finds it further on.
    run_url, closed_at = page.url, _step(page)
    page.close()
    other.close()
    page = first.new_page()
    page.goto(run_url, timeout=WAIT_MS)
    _run_header(page, run_id).filter(has_text="running").wait_for(timeout=WAIT_MS)
    _wait_step_above(page, closed_at)

    _log("Stop")
    # Stop: the run ends with a checkpoint on disk, and the download button and the runs table show it.
    _button(page, "Stop").click()
    _run_header(page, run_id).filter(has_text="stopped").wait_for(timeout=WAIT_MS)
    stopped_at = _step(page)
    assert 0 < stopped_at < 20_000
    assert json.loads((runs_dir / run_id / "status.json").read_text())["state"] == "stopped"
    assert (runs_dir / run_id / "checkpoints" / "last.pt").is_file()
    page.get_by_role("button", name=re.compile(r"last\.pt$")).wait_for(timeout=WAIT_MS)  # download
    page.locator('[data-testid="stDataFrame"]').wait_for(timeout=WAIT_MS)  # the runs table

    _log("Samples")
    # Samples: a grid of images from the run's checkpoint.
    _open_page(page, "Samples")
    page.get_by_text("Model samples").wait_for(timeout=WAIT_MS)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".some(img => img.complete && img.naturalWidth > 100)",
        timeout=WAIT_MS,
    )
    _settle(page)
    assert page.locator('[data-testid="stSelectbox"] input').first.input_value() == run_id
    assert "hidden 16" in main_text(page)
    assert not exceptions_on_page(page)
    _shoot(page, "samples")

    # Jacobian: the analytic log-determinants agree with autograd.
    _open_page(page, "Jacobian")
    page.get_by_text(re.compile(r"\bagree\b")).first.wait_for(timeout=WAIT_MS)
    _settle(page)
    assert not exceptions_on_page(page)
    assert "Disagreement" not in main_text(page)
    _shoot(page, "jacobian")

    # Every other page renders without an exception.
    for title in ("Model", "Playground", "Home"):
        _open_page(page, title)
        _settle(page)
        assert not exceptions_on_page(page), f"{title}: {exceptions_on_page(page)}"
        _shoot(page, title.lower())
