"""In a real Chromium: a run name in the URL fetches nothing, and classroom mode's token form works."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from dashboard import access

from .browser import streamlit_server

pytestmark = pytest.mark.browser
WAIT_MS = 60_000
TRACKER = "198.51.100.7"  # TEST-NET-2: nothing answers there, but a request would show up


def test_injected_markdown_fetches_nothing_and_only_the_teacher_controls(
    browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(access.TOKEN_ENV, "s3cret")
    with streamlit_server(tmp_path / "no-mnist", tmp_path / "runs", tmp_path) as server:
        page = browser.new_page()
        hosts: list[str | None] = []
        page.on("request", lambda request: hosts.append(urlparse(request.url).hostname))
        page.goto(f"{server.url}/train?run=![img](http://{TRACKER}/tracking.png)")
        page.wait_for_selector("text=There is no run", timeout=WAIT_MS)
        page.wait_for_timeout(1000)
        assert TRACKER not in hosts  # the image in the run name was shown as text, not fetched
        assert page.get_by_text(f"![img](http://{TRACKER}/tracking.png)", exact=False).count() >= 1

        assert page.get_by_role("button", name="Start training").is_disabled()
        assert page.locator("[data-testid='stFileUploader']").count() == 0
        page.get_by_label("Teacher token").fill("wrong")
        page.get_by_role("button", name="Enter", exact=True).click()
        page.wait_for_selector("text=not the teacher's token", timeout=WAIT_MS)
        page.get_by_label("Teacher token").fill("s3cret")
        page.get_by_role("button", name="Enter", exact=True).click()
        page.wait_for_selector("text=Teacher mode", timeout=WAIT_MS)
        page.locator("[data-testid='stFileUploader']").first.wait_for(timeout=WAIT_MS)
        page.close()
