"""Routing: one page list, and the deep-link repair's dependency on a private Streamlit attribute."""

from __future__ import annotations

from pathlib import Path

from dashboard.pages import DEFAULT_PAGE, PAGES

from .browser import PAGES as BROWSER_PAGES

REPO = Path(__file__).resolve().parents[1]


def test_streamlit_still_has_the_attribute_the_deep_link_repair_switches_off() -> None:
    """dashboard/__init__.py sets PagesManager.uses_pages_directory = False on a first deep link.

    Measured with Streamlit 1.67 in Chromium: without it, /train as the first visit of a fresh server
    shows the legacy page list (file names, no entry script). If Streamlit renames or drops the
    attribute, the repair silently does nothing; this fails so the repair gets revisited.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    assert hasattr(PagesManager, "uses_pages_directory"), "Streamlit changed: revisit dashboard/__init__.py"
    assert callable(get_script_run_ctx)


def test_one_page_list_with_a_script_for_each_page() -> None:
    assert DEFAULT_PAGE is PAGES[0]
    assert {spec.url_path: spec.title for spec in PAGES} == BROWSER_PAGES
    for spec in PAGES:
        assert (REPO / spec.script).is_file(), spec.script
    thin = {spec.script: len((REPO / spec.script).read_text().splitlines()) for spec in PAGES}
    assert max(thin.values()) <= 6, thin  # every page script only calls its dashboard/<page>/ module
