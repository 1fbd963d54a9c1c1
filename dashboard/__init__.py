"""The dashboard: one sub-package per page (``home/``, ``train/``, ``samples/``, ``jacobian/``, ``model/``,
``playground/``), ``services/`` (run manager, cached state), ``widgets/`` (charts, images, maths, the
sidebar) and ``pages.py``, the one page list. ``pages/`` holds a thin script per page.

Importing this package also repairs a Streamlit trap. Because a ``pages/`` folder sits beside
``streamlit_app.py``, Streamlit starts every server in its legacy multipage mode and only leaves it when
``st.navigation`` first runs. So if the first visitor of a fresh server opens a deep link such as
``/train``, Streamlit runs ``pages/train.py`` alone, with the legacy page list (file names, no entry
script). Every page imports ``dashboard``; if that happens in legacy mode, we switch the legacy mode off
and rerun, so the entry script routes the same URL through ``st.navigation`` like any later visit.
Still needed with Streamlit 1.67 (checked in Chromium on fresh servers: without it the first deep link
shows the legacy page list); tests/test_app_routing.py fails if the attribute it sets disappears.
"""

from __future__ import annotations


def _leave_legacy_pages_mode() -> None:
    """Turns Streamlit's legacy ``pages/`` mode off and reruns, when a page runs in it."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # a Streamlit without these internals has no such mode to leave
        return
    if PagesManager.uses_pages_directory and get_script_run_ctx() is not None:
        import streamlit as st

        PagesManager.uses_pages_directory = False  # what st.navigation itself does on its first call
        st.rerun()


_leave_legacy_pages_mode()
