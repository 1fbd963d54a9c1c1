"""The Guided tour in a real Chromium: a deep link on a fresh server, Next through every step, Back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .browser import (
    exceptions_on_page,
    main_text,
    make_data_dir,
    streamlit_server,
    wait_for_navigation,
)

pytestmark = pytest.mark.browser

WAIT_MS = 120_000


def _heading(page, number: int) -> None:
    """Waits until the step heading "<number>. ..." is shown."""
    main = page.get_by_test_id("stMainBlockContainer")
    main.get_by_role("heading", name=re.compile(rf"^{number}\. ")).first.wait_for(timeout=WAIT_MS)


def _difference(page) -> float:
    """The page's printed difference between the trace's sum and logProbability."""
    for _ in range(240):  # the check is drawn below the step's equations, which render last
        found = re.search(r"difference = (\S+)", main_text(page))
        if found:
            return float(found.group(1))
        page.wait_for_timeout(500)
    raise AssertionError(f"no printed check on the page: {main_text(page)[-2000:]}")


def test_tour_next_through_every_step_and_back(browser, mnist_dir: Path, tmp_path: Path) -> None:
    data_dir = make_data_dir(mnist_dir, tmp_path / "data" / "mnist")
    with streamlit_server(data_dir, tmp_path / "runs", tmp_path) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.goto(f"{server.url}/tour")  # the first visit of a fresh server, by deep link
        wait_for_navigation(page, "Guided tour")
        _heading(page, 1)
        caption = page.get_by_text(re.compile(r"Step 1 of \d+")).first
        caption.wait_for(timeout=WAIT_MS)  # drawn after the heading: wait for it, do not race it
        steps = int(re.search(r"Step 1 of (\d+)", caption.inner_text()).group(1))
        assert steps == 9  # pixels, dequantization, logit, 4 couplings, z, the way back
        main = page.get_by_test_id("stMainBlockContainer")
        for number in range(2, steps + 1):
            main.get_by_role("button", name="Next >").click()
            _heading(page, number)
            assert abs(_difference(page)) < 1e-9
        main.get_by_role("button", name="< Back").click()
        _heading(page, steps - 1)
        page.wait_for_function(  # the step's equations render after its heading
            "() => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
            ".innerText.includes('bits/dim')",
            timeout=WAIT_MS,
        )
        assert abs(_difference(page)) < 1e-9
        assert exceptions_on_page(page) == []
        context.close()
