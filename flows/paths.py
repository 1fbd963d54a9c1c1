"""Where Flow Lab keeps runs/ and data/: the clone it runs from, else the current folder."""

from __future__ import annotations

from pathlib import Path

#: The folder above ``flows/``: a clone of the repository, or site-packages once installed with pip.
PACKAGE_PARENT = Path(__file__).resolve().parents[1]


def work_root() -> Path:
    """The repository when ``flows/`` runs from a clone (``python main.py``, ``pip install -e .``), else the
    current folder (``flowlab-train`` of a pip-installed package writes ``./runs``, reads ``./data``)."""
    if (PACKAGE_PARENT / "pyproject.toml").is_file() and (PACKAGE_PARENT / "main.py").is_file():
        return PACKAGE_PARENT
    return Path.cwd()
