"""The README shows every screenshot scripts/screenshots.py takes, and the script takes every page's."""

from __future__ import annotations

import re

from scripts import screenshots

from .browser import PAGES, REPO


def test_the_readme_links_each_screenshot_the_script_takes_and_each_exists() -> None:
    readme = (REPO / "README.md").read_text()
    linked = set(re.findall(r"docs/screenshots/([\w-]+)\.png", readme))
    assert set(screenshots.SHOTS) <= linked, f"not in the README: {set(screenshots.SHOTS) - linked}"
    assert len(set(screenshots.SHOTS)) == len(screenshots.SHOTS)
    for name in linked:
        assert (REPO / "docs" / "screenshots" / f"{name}.png").is_file(), f"README links a missing {name}.png"


def test_every_page_has_a_screenshot() -> None:
    for url_path in PAGES:
        assert url_path in screenshots.SHOTS, f"no screenshot of /{url_path}"
