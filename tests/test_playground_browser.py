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
FIRST_DRAW_TIMEOUT_MS = 180_000  # a cold page on a loaded 2-core machine: four charts, plotly.js in each
SCREENSHOT_TIMEOUT_MS = 180_000  # a busy 2-core machine can take many seconds to hand over a frame


def read_status(page) -> tuple[int, float | None, bool]:
    """(step, recent loss in nats or None before the first step, training?) from the status row."""
    text = page.locator(STATUS_SELECTOR).inner_text()
    step = int(re.search(r"Step\s+([\d,]+)", text).group(1).replace(",", ""))
    loss = re.search(r"Loss \(nats\)\s+(-?[\d.]+)", text)
    return step, float(loss.group(1)) if loss else None, "training" in text


def open_playground(page, base_url: str, query: str = "") -> None:
    """Opens the Playground page and waits until its heatmap is drawn.

    On a server that has served nothing yet, a first deep link runs pages/playground.py on its own
    (Streamlit's pages/ folder convention) before streamlit_app.py's router is known: the page works
    the same, only without the wide layout. Open the root first when the layout matters.
    """
    page.goto(base_url.rstrip("/") + "/playground" + query)
    page.frame_locator(f"{DENSITY_SELECTOR} iframe").locator(".js-plotly-plot").wait_for(
        timeout=FIRST_DRAW_TIMEOUT_MS
    )


def play_playground(page, base_url: str, seconds: float = 3.0) -> dict:
    """Opens the page, presses Play for ``seconds``, then Pause; returns what changed.

    Keys: step_before, step_after, loss_after, density_before, density_after (PNG bytes of the heatmap
    panel), paused_step (the step shown once paused).
    """
    open_playground(page, base_url)
    step_before, _, _ = read_status(page)
    density_before = page.locator(DENSITY_SELECTOR).screenshot(timeout=SCREENSHOT_TIMEOUT_MS)
    page.get_by_role("button", name=PLAY_BUTTON).click()
    page.wait_for_selector(f"{STATUS_SELECTOR}:has-text('training')", timeout=60_000)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or read_status(page)[0] <= step_before:
        assert time.monotonic() < deadline + 60, "the step counter never advanced"
        page.wait_for_timeout(250)
    step_after, loss_after, _ = read_status(page)
    # The charts draw in turns, after the status row: the heatmap may take a few refreshes to show it.
    redraw_deadline = time.monotonic() + 60
    density_after = page.locator(DENSITY_SELECTOR).screenshot(timeout=SCREENSHOT_TIMEOUT_MS)
    while density_after == density_before and time.monotonic() < redraw_deadline:
        page.wait_for_timeout(500)
        density_after = page.locator(DENSITY_SELECTOR).screenshot(timeout=SCREENSHOT_TIMEOUT_MS)
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


PANEL_SELECTORS = tuple(f".st-key-pg_panel_{name}" for name in ("samples", "density", "grid", "loss"))
BURST_FRAMES = 40
MAX_BLANK_FRAMES = 4  # of 40: see test_no_panel_goes_blank_while_playing
VIEWPORTS = ({"width": 1600, "height": 1000}, {"width": 1280, "height": 720})  # a laptop, a projector


def blank_panels_in_burst(page, frames: int = BURST_FRAMES) -> tuple[int, int, int]:
    """(frames with a blank panel, blank panels in all, frames showing a "Stop" button) while playing.

    A panel is blank when every pixel of its box has one colour (the background): no axes, no points.
    """
    import io

    from PIL import Image

    boxes = [page.locator(selector).bounding_box() for selector in PANEL_SELECTORS]
    stop = page.get_by_role("button", name="Stop", exact=True)
    frames_blank = panels_blank = frames_with_stop = 0
    for _ in range(frames):
        shot = Image.open(io.BytesIO(page.screenshot(timeout=SCREENSHOT_TIMEOUT_MS))).convert("RGB")
        blank = 0
        for box in boxes:
            crop = shot.crop(
                (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))
            )
            blank += all(low == high for low, high in crop.getextrema())  # one colour in every band
        frames_blank += blank > 0
        panels_blank += blank
        frames_with_stop += any(button.is_visible() for button in stop.all())
        page.wait_for_timeout(100)
    return frames_blank, panels_blank, frames_with_stop


#: In the page: the time of the next press of a button (pointerdown), and the first time after it that the
#: status row says ``word``. Seconds between the two is what a user waits; Playwright's own checks before
#: it presses (the button visible, stable, enabled) are not part of it.
ANSWER_JS = """word => { window.__answer = new Promise(resolve => {
    let pressed = null;
    const status = () => (document.querySelector('.st-key-pg_status') || {}).innerText || '';
    const check = () => {
        if (pressed !== null && status().includes(word)) {
            observer.disconnect();
            resolve((performance.now() - pressed) / 1000);
        }
    };
    const observer = new MutationObserver(check);
    document.addEventListener('pointerdown', () => { pressed = performance.now(); check(); },
                              {capture: true, once: true});
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}); }"""


def seconds_until(page, word: str, click: str) -> float:
    """Seconds from pressing the button named ``click`` until the status row says ``word`` (measured in the
    page, from the press to the change on screen)."""
    button = page.get_by_role("button", name=click, exact=True)
    button.wait_for(timeout=60_000)
    page.evaluate(ANSWER_JS, word)
    button.click(timeout=120_000)
    page.wait_for_selector(f"{STATUS_SELECTOR}:has-text('{word}')", timeout=120_000)
    return float(page.evaluate("() => window.__answer"))


def wait_for_panels(page) -> None:
    for selector in PANEL_SELECTORS:
        page.frame_locator(f"{selector} iframe").locator(".js-plotly-plot").wait_for(
            timeout=FIRST_DRAW_TIMEOUT_MS
        )


@pytest.mark.browser
@pytest.mark.timeout(1800)  # 40 screenshots of a page that trains: many seconds each on a loaded machine
@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda size: f"{size['width']}x{size['height']}")
def test_no_panel_goes_blank_while_playing(dashboard_url: str, viewport: dict) -> None:
    """A 40-frame burst while training: no blank panel, no header "Stop"; Pause and Play answer (printed)."""
    with chromium() as browser:
        page = browser.new_page(viewport=viewport)
        open_playground(page, dashboard_url)
        wait_for_panels(page)
        page.get_by_role("button", name=PLAY_BUTTON).click()
        page.wait_for_selector(f"{STATUS_SELECTOR}:has-text('training')", timeout=60_000)
        step = read_status(page)[0]
        frames_blank, panels_blank, frames_with_stop = blank_panels_in_burst(page)
        assert read_status(page)[0] > step  # it trained (and redrew) during the burst
        mounts = page.evaluate("() => window.__flowlabLiveCharts.mounts")  # chart key -> iframes that drew it
        print(f"\n{frames_blank} of {BURST_FRAMES} frames had a blank panel ({panels_blank} panels)")
        print(f"iframes per chart (1: never mounted afresh): {mounts}")
        # Under heavy load Streamlit sometimes mounts the second row's iframes afresh in the first refreshes
        # after Play (seen with 6 busy processes on 2 cores); the component then shows its last picture until
        # plotly.js has loaded, which leaves at most a frame or two blank. Every remount blanked 10-13.
        assert frames_blank <= MAX_BLANK_FRAMES, (
            f"{frames_blank} of {BURST_FRAMES} frames had a blank panel ({panels_blank} panels)"
        )
        assert frames_with_stop == 0, f"the header showed a Stop button in {frames_with_stop} frames"
        pause = seconds_until(page, "paused", PAUSE_BUTTON)
        play = seconds_until(page, "training", PLAY_BUTTON)
        pause_again = seconds_until(page, "paused", PAUSE_BUTTON)
        print(
            f"\n{viewport['width']}x{viewport['height']}: Pause answered in {pause:.2f} s and "
            f"{pause_again:.2f} s, Play in {play:.2f} s while training (this machine's load)"
        )


TEXT_SELECTORS = (
    '.st-key-pg_status [data-testid="stMetricLabel"] p',
    '.st-key-pg_status [data-testid="stMetricValue"] div',
    '[data-testid="stTab"] p',
    ".stMainBlockContainer h3",
)


@pytest.mark.browser
@pytest.mark.parametrize("presenter_mode", [False, True], ids=["normal", "presenter"])
def test_projector_layout_fits_one_screen_with_nothing_clipped(dashboard_url: str, presenter_mode: bool):
    """At 1280x720 the buttons, the status tiles and the four panels lie inside the viewport, no text cut;
    the same in presenter mode, with its larger text on the dark theme."""
    query = "?presenter=1" if presenter_mode else ""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(dashboard_url + query)  # the router first: the wide layout
        page.wait_for_timeout(1000)
        open_playground(page, dashboard_url, query)
        wait_for_panels(page)
        page.wait_for_timeout(1500)  # the panels size themselves to the window once drawn
        boxes = {
            name: page.get_by_role("button", name=name, exact=True).bounding_box()
            for name in ("Play", "Pause", "Step", "Reset")
        }
        boxes["status"] = page.locator(STATUS_SELECTOR).bounding_box()
        for selector in PANEL_SELECTORS:
            boxes[selector] = page.locator(selector).bounding_box()
        outside = {
            name: box
            for name, box in boxes.items()
            if box["x"] < 0
            or box["y"] < 0
            or box["x"] + box["width"] > 1280
            or box["y"] + box["height"] > 720
        }
        assert not outside, f"outside the 1280x720 screen: {outside}"
        clipped = page.evaluate(
            """selectors => selectors.flatMap(selector => [...document.querySelectorAll(selector)]
                .filter(el => el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight + 1)
                .map(el => [selector, el.innerText, el.scrollWidth, el.clientWidth]))""",
            list(TEXT_SELECTORS),
        )
        assert not clipped, f"text cut short (selector, text, scrollWidth, clientWidth): {clipped}"
        background = page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor")
        assert (background == "rgb(0, 0, 0)") == presenter_mode, f"the app is drawn on {background}"
        # presenter mode leaves out the Gaussian fit and target entropy tiles (the loss panel draws both)
        tiles = page.locator(".st-key-pg_status [data-testid='stMetric']").count()
        assert tiles == (4 if presenter_mode else 6)
        for selector in PANEL_SELECTORS:  # each chart's title inside its chart
            chart = page.frame_locator(f"{selector} iframe").locator("#chart")
            left, right, width = chart.evaluate(
                "el => { const r = el.querySelector('.gtitle').getBoundingClientRect();"
                " return [r.left, r.right, el.clientWidth]; }"
            )
            assert 0 <= left < right <= width, f"{selector}: title spans {left:.0f}-{right:.0f} of {width} px"
