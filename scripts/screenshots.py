"""Screenshots of every dashboard page for the README (docs/screenshots/<page>.png).

    python scripts/screenshots.py [--out docs/screenshots] [--live-seconds 30] [--playground-seconds 45]

Starts the dashboard on a free port of 127.0.0.1 with an empty runs folder (as on a fresh clone: the
Samples page shows the shipped examples), starts a live run from the Train page in a real Chromium
(/usr/bin/chromium) and photographs each page at 1600x1000; the Playground after playing the spiral, once
more at 1280x720 (a projector) and once in presenter mode. Each step names the page and what it waited
for when it times out. Needs the MNIST test files: $FLOWLAB_DATA_DIR, data/mnist, or ../shared/data/mnist.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flows.data import default_data_dir  # noqa: E402
from tests.browser import (  # noqa: E402
    LIVE_CHART_POINTS_JS,
    MNIST_TEST_FILES,
    chromium,
    make_data_dir,
    missing_browser,
    screenshot_whole_page,
    streamlit_server,
    wait_for_navigation,
)

VIEWPORT = {"width": 1600, "height": 1000}
WAIT_MS = 120_000


def find_mnist() -> Path:
    """A folder holding MNIST's test files."""
    for folder in (default_data_dir("mnist"), REPO.parent / "shared" / "data" / "mnist"):
        if all((folder / name).is_file() for name in MNIST_TEST_FILES):
            return folder
    raise SystemExit("MNIST test files not found: run python scripts/download_mnist.py first")


#: Every PNG this script writes, in the order it takes them (the README links each).
SHOTS = (
    "home",
    "train",
    "samples",
    "jacobian",
    "model",
    "tour",
    "playground",
    "playground-projector",
    "playground-presenter",
)


@contextlib.contextmanager
def step(page_name: str, what: str) -> Iterator[None]:
    """Turns a Playwright timeout into one line naming the page and what the script waited for."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    print(f"{page_name}: {what} ...", flush=True)
    try:
        yield
    except PlaywrightTimeout as error:
        raise SystemExit(f"screenshots: {page_name}: timed out waiting for {what}: {error}") from None


def settle(page) -> None:
    """Waits until no script run is in progress, then for charts and images to finish drawing."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=WAIT_MS)
    page.wait_for_timeout(2000)


def shoot(page, out: Path, name: str, whole: bool = True) -> None:
    settle(page)
    path = out / f"{name}.png"
    if whole:
        screenshot_whole_page(page, path)
    else:
        page.screenshot(path=str(path))
    print(f"wrote {path}", flush=True)


def open_page(page, title: str) -> None:
    with step(title, "the sidebar link and the page"):
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
        wait_for_navigation(page, title)
        settle(page)


def main_button(page, label: str):
    """The page's own button ``label`` (not the header's): enabled ones only."""
    main = page.get_by_test_id("stMainBlockContainer")
    return main.locator("button:not([disabled])").filter(has_text=re.compile(rf"{re.escape(label)}$"))


def play_spiral(page, seconds: float) -> None:
    """The Playground on the spiral: Play for ``seconds``, then Pause."""
    with step("Playground", "the live panels"):
        page.frame_locator(".st-key-pg_panel_density iframe").locator(".js-plotly-plot").wait_for(
            timeout=WAIT_MS
        )
    with step("Playground", "the Spiral target"):
        page.get_by_role("combobox", name="Target").click()
        page.get_by_role("option", name="Spiral").click()
        settle(page)
    with step("Playground", "Play, then Pause"):
        main_button(page, "Play").click()
        page.wait_for_timeout(seconds * 1000)
        main_button(page, "Pause").click()
        page.locator(".st-key-pg_status", has_text="paused").wait_for(timeout=WAIT_MS)


def photograph(url: str, out: Path, live_seconds: float, playground_seconds: float) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        with step("Home", "the first page"):
            page.goto(url)
            wait_for_navigation(page, "Home")
            page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=WAIT_MS)
        shoot(page, out, "home")

        # Train: a live RealNVP on the MNIST digits, shot while it trains, then stopped.
        open_page(page, "Train")
        with step("Train", "Start training and a run id in the URL"):
            hidden = page.get_by_role("textbox", name="Hidden sizes")
            hidden.fill("128, 128")
            hidden.press("Enter")
            settle(page)
            main_button(page, "Start training").click()
            page.wait_for_url(re.compile(r"[?&]run="), timeout=WAIT_MS)
        with step("Train", "the live loss curve and fresh samples"):
            page.locator('[data-testid="stImage"] img').first.wait_for(timeout=WAIT_MS)
            page.wait_for_function(f"() => ({LIVE_CHART_POINTS_JS})() > 1", timeout=WAIT_MS)
            page.wait_for_timeout(live_seconds * 1000)
        shoot(page, out, "train")
        with step("Train", "an enabled Stop button, then the stopped run"):
            main_button(page, "Stop").click()
            page.locator("h4", has_text="stopped").wait_for(timeout=WAIT_MS)

        # Samples of the shipped Glow example, as a fresh clone shows them.
        with step("Samples", "the Glow example's samples"):
            page.goto(f"{url}/samples?run=example-glow")
            wait_for_navigation(page, "Samples")
            page.get_by_text("Model samples").first.wait_for(timeout=WAIT_MS)
        with step("Samples", "temperature 0.7"):
            thumb = page.get_by_test_id("stMainBlockContainer").get_by_role("slider").first
            thumb.focus()
            for _ in range(6):  # 1.0 -> 0.7 in steps of 0.05
                thumb.press("ArrowLeft")
            page.get_by_text("T = 0.7:").first.wait_for(timeout=WAIT_MS)
        shoot(page, out, "samples")

        for title in ("Jacobian", "Model"):
            open_page(page, title)
            shoot(page, out, title.lower())

        open_page(page, "Guided tour")
        with step("Guided tour", "the third step"):
            main = page.get_by_test_id("stMainBlockContainer")
            for number in (2, 3):
                main.get_by_role("button", name="Next >").click()
                main.get_by_role("heading", name=re.compile(rf"^{number}\. ")).first.wait_for(timeout=WAIT_MS)
        shoot(page, out, "tour")

        open_page(page, "Playground")
        play_spiral(page, playground_seconds)
        shoot(page, out, "playground")

        # A projector: 1280x720, one screen, then the same in presenter mode.
        projector = browser.new_page(viewport={"width": 1280, "height": 720})
        for name, query in (("playground-projector", ""), ("playground-presenter", "?presenter=1")):
            with step("Playground", f"the page at 1280x720{' in presenter mode' if query else ''}"):
                projector.goto(f"{url}/playground{query}")
                wait_for_navigation(projector, "Playground")
            play_spiral(projector, playground_seconds / 3)
            shoot(projector, out, name, whole=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="folder for the PNGs")
    parser.add_argument("--live-seconds", type=float, default=30.0, help="training shown on the Train page")
    parser.add_argument(
        "--playground-seconds", type=float, default=45.0, help="Play on the spiral before the Playground shot"
    )
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="flowlab-screenshots-") as temp:
        temp_dir = Path(temp)
        data_dir = make_data_dir(find_mnist(), temp_dir / "data" / "mnist")
        runs_dir = temp_dir / "runs"
        with streamlit_server(data_dir, runs_dir, temp_dir) as server:
            photograph(server.url, args.out, args.live_seconds, args.playground_seconds)


if __name__ == "__main__":
    main()
