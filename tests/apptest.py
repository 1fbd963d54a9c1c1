"""The dashboard in ``streamlit.testing.v1.AppTest``: the folders it reads, and one page opened and run."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "streamlit_app.py")


def use_folders(monkeypatch: pytest.MonkeyPatch, data_dir: Path, runs_dir: Path) -> None:
    """Points the dashboard at ``data_dir`` and ``runs_dir`` ($FLOWLAB_DATA_DIR, $FLOWLAB_RUNS_DIR)."""
    monkeypatch.setenv("FLOWLAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FLOWLAB_RUNS_DIR", str(runs_dir))


def open_page(script: str | None, timeout: float, run: str | None = None, run_now: bool = True) -> AppTest:
    """``streamlit_app.py`` switched to ``script`` (e.g. "pages/train.py"; None: the entry page), with
    ``?run=<run>`` in the URL when given; run once unless ``run_now`` is False."""
    app = AppTest.from_file(APP, default_timeout=timeout)
    if run:
        app.query_params["run"] = run
    if script is not None:
        app.switch_page(script)
    return app.run() if run_now else app
