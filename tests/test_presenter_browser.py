"""Presenter mode in a real Chromium: switched on once, it stays on across pages, a reload and a deep link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard.widgets import presenter

from .browser import exceptions_on_page, make_data_dir, streamlit_server, wait_for_navigation

pytestmark = pytest.mark.browser

WAIT_MS = 120_000
#: What the page's style says: the app's background colour and the root font size in pixels.
STYLE_JS = """() => ({
    background: getComputedStyle(document.querySelector('.stApp')).backgroundColor,
    font: parseFloat(getComputedStyle(document.documentElement).fontSize),
})"""
DARK = "rgb(0, 0, 0)"


def _is_dark(colour: str) -> bool:
    """Whether a CSS ``rgb(...)`` colour is dark enough for white text (the sum of its channels < 150)."""
    red, green, blue = (int(v) for v in re.findall(r"\d+", colour)[:3])
    return red + green + blue < 150


def _style(page) -> dict:
    return page.evaluate(STYLE_JS)


def _wait_style(page, dark: bool) -> dict:
    """Waits until the page is (or is not) drawn in presenter mode; returns its style."""
    check = f"s => ({STYLE_JS})().background {'===' if dark else '!=='} '{DARK}'"
    page.wait_for_function(check, timeout=WAIT_MS)
    return _style(page)


def _open(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    wait_for_navigation(page, title)


def test_presenter_mode_persists_across_pages_reloads_and_links(browser, mnist_dir: Path, tmp_path: Path):
    data_dir = make_data_dir(mnist_dir, tmp_path / "data" / "mnist")
    with streamlit_server(data_dir, tmp_path / "runs", tmp_path) as server:
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.goto(f"{server.url}/model")
        wait_for_navigation(page, "Model")
        normal = _wait_style(page, dark=False)
        switch = page.locator('[data-testid="stSidebar"]').get_by_text("Presenter mode", exact=True)
        switch.click()
        on = _wait_style(page, dark=True)
        assert on["font"] == pytest.approx(normal["font"] * presenter.FONT_SCALE)
        page.wait_for_url(re.compile(r"[?&]presenter=1"), timeout=WAIT_MS)

        for title in ("Jacobian", "Train", "Home"):  # the sidebar's links: the mode follows
            _open(page, title)
            assert _wait_style(page, dark=True)["font"] == on["font"]
            page.wait_for_url(re.compile(r"[?&]presenter=1"), timeout=WAIT_MS)
            if title == "Jacobian":  # its table (drawn on a light canvas) inverted; tab labels white
                table = page.locator('[data-testid="stDataFrame"]').first
                table.wait_for(timeout=WAIT_MS)
                assert "invert(1)" in table.evaluate("el => getComputedStyle(el).filter")
                tab = page.locator('[data-testid="stTab"] p').first
                assert tab.evaluate("el => getComputedStyle(el).color") == "rgb(255, 255, 255)"
                page.locator('[data-testid="stSelectbox"]').first.click()  # its list opens dark too
                dropdown = page.locator('[data-testid="stSelectboxVirtualDropdown"]')
                dropdown.wait_for(timeout=WAIT_MS)
                assert _is_dark(dropdown.evaluate("el => getComputedStyle(el).backgroundColor"))
                page.keyboard.press("Escape")
            if title == "Train":  # its "No run is training" box: dark behind white text, not pastel
                alert = page.locator('[data-testid="stAlertContainer"]').first
                alert.wait_for(timeout=WAIT_MS)
                assert _is_dark(alert.evaluate("el => getComputedStyle(el).backgroundColor"))

        page.reload()  # a reload keeps it (the URL does)
        wait_for_navigation(page, "Home")
        _wait_style(page, dark=True)

        other = browser.new_context().new_page()  # a copied link, in a fresh session
        other.goto(f"{server.url}/samples?presenter=1")
        wait_for_navigation(other, "Samples")
        _wait_style(other, dark=True)

        page.locator('[data-testid="stSidebar"]').get_by_text("Presenter mode", exact=True).click()
        assert _wait_style(page, dark=False)["font"] == normal["font"]
        page.wait_for_function("() => !location.search.includes('presenter')", timeout=WAIT_MS)
        assert not exceptions_on_page(page) and not exceptions_on_page(other)
