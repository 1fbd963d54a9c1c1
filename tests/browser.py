"""A real Streamlit server and a real Chromium for the end-to-end tests and scripts/screenshots.py."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The dashboard's pages: URL path -> title in the navigation, in navigation order.
PAGES = {
    "home": "Home",
    "train": "Train",
    "samples": "Samples",
    "jacobian": "Jacobian",
    "model": "Model",
    "playground": "Playground",
    "tour": "Guided tour",
}
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SERVER_START_TIMEOUT_S = 60.0


#: JavaScript: points of the first line in the page's first live chart (the Plotly div inside the
#: live_chart component's iframe; 0 while none is drawn). Plotly sends arrays in binary, so read _fullData.
LIVE_CHART_POINTS_JS = """() => {
    const frame = document.querySelector('[data-testid="stMain"] iframe[title*="live_chart"]');
    const el = frame && frame.contentDocument && frame.contentDocument.getElementById('chart');
    return el && el._fullData && el._fullData.length ? el._fullData[0].x.length : 0;
}"""


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A real headless Chromium (Playwright's ``Browser``) at CHROMIUM with CHROMIUM_ARGS, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_data_dir(mnist_source: Path, target: Path) -> Path:
    """A data folder holding MNIST's test files only (as on this machine: no train split)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in MNIST_TEST_FILES:
        shutil.copy(mnist_source / name, target / name)
    return target


class StreamlitServer:
    """``streamlit run streamlit_app.py`` on a free port of 127.0.0.1, with its own data and runs folders."""

    def __init__(
        self, data_dir: Path, runs_dir: Path, log_path: Path, script: str = "streamlit_app.py"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ)
        env.update(
            {"FLOWLAB_DATA_DIR": str(data_dir), "FLOWLAB_RUNS_DIR": str(runs_dir), "PYTHONUNBUFFERED": "1"}
        )
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            script,
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(self.port),
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_healthy(self, timeout_s: float = SERVER_START_TIMEOUT_S) -> None:
        """Polls /_stcore/health until it answers "ok"; RuntimeError with the server log otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/_stcore/health", timeout=2).text.strip() == "ok":
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"streamlit did not answer /_stcore/health within {timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, characters: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-characters:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@contextlib.contextmanager
def streamlit_server(
    data_dir: Path, runs_dir: Path, log_dir: Path | None = None, script: str = "streamlit_app.py"
) -> Iterator[StreamlitServer]:
    """A started, healthy server running ``script`` (the dashboard unless told); stopped on exit."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="flowlab-server-"))
    server = StreamlitServer(data_dir, runs_dir, log_dir / f"streamlit-{time.time_ns()}.log", script)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def nav_titles(page) -> list[str]:  # page: playwright.sync_api.Page
    """Titles of the sidebar navigation links, in order."""
    links = page.locator('[data-testid="stSidebarNavLink"] [data-testid="stMarkdownContainer"]')
    return [text.strip() for text in links.all_inner_texts()]


def wait_for_navigation(page, current_title: str, timeout_s: float = 60.0) -> list[str]:
    """Waits until the sidebar lists the six pages with ``current_title`` marked current; returns the titles.

    Raises AssertionError with what the sidebar showed instead.
    """
    expected = list(PAGES.values())
    deadline = time.monotonic() + timeout_s
    titles: list[str] = []
    current = None
    while time.monotonic() < deadline:
        titles = nav_titles(page)
        marked = page.locator(
            '[data-testid="stSidebarNavLink"][aria-current="page"] [data-testid="stMarkdownContainer"]'
        )
        current = marked.first.inner_text().strip() if marked.count() else None
        if titles == expected and current == current_title:
            return titles
        page.wait_for_timeout(250)
    raise AssertionError(
        f"navigation shows {titles} with {current!r} current; expected {expected}, {current_title!r}"
    )


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def metric_value(page, label: str) -> str:
    """The value of the ``st.metric`` tile whose label is exactly ``label``."""
    tile = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^{re.escape(label)}$"))
    )
    return tile.locator('[data-testid="stMetricValue"]').first.inner_text().strip()


def exceptions_on_page(page) -> list[str]:
    """Texts of the Streamlit exception boxes on the page (empty when the page ran cleanly)."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def screenshot_whole_page(page, path: Path, max_height: int = 4000) -> None:
    """A PNG of the whole page from the top: the viewport is stretched to the height of the content.

    Streamlit scrolls inside its main container, so Playwright's ``full_page`` alone shows one screen.
    """
    size = page.viewport_size
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]');
            if (main) main.scrollTo(0, 0);
            return main ? main.scrollHeight : document.body.scrollHeight;
        }"""
    )
    page.set_viewport_size(
        {"width": size["width"], "height": max(size["height"], min(int(height), max_height))}
    )
    page.wait_for_timeout(500)  # let charts re-layout to the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
