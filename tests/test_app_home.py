"""The Home page in AppTest: renders, links every page, MNIST status, Download with a real loopback mirror."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.home.view import CIRCLE_RADII, fit_moons_flow, flow_stages, mnist_status
from flows.data import make_toy

from .apptest import open_page, use_folders

TIMEOUT_S = 180  # the first run trains the picture's small flow (seconds; more on a busy CPU)
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MNIST folder the app uses, and an empty runs folder."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    use_folders(monkeypatch, folder, tmp_path / "runs")
    monkeypatch.delenv("FLOWLAB_MNIST_MIRROR", raising=False)
    return folder


@pytest.fixture
def serve_folder() -> Iterator:
    """Starts an HTTP server on 127.0.0.1 serving a folder; yields ``serve(folder) -> base URL``."""
    servers = []

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    def serve(folder: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _home() -> AppTest:
    return open_page(None, TIMEOUT_S)


def _texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in getattr(at, kind)]


def test_home_renders_links_and_offers_download_when_data_dir_is_empty(data_dir: Path) -> None:
    at = _home()
    assert not at.exception
    assert at.title[0].value.endswith("Flow Lab")
    assert any("not in" in text and str(data_dir) in text for text in _texts(at, "warning"))
    assert [button.label for button in at.button] == ["Download MNIST"]
    linked = {link.proto.page for link in at.get("page_link")}
    assert linked == {"train", "samples", "jacobian", "model", "playground", "tour"}  # every page but Home
    latex = " ".join(_texts(at, "latex"))
    assert r"f_0 \circ f_1" in latex and "sv(y)" in latex and "su(x)" in latex
    assert len(at.get("plotly_chart")) == 1


def test_home_shows_present_status_for_real_mnist_files(data_dir: Path, mnist_dir: Path) -> None:
    for name in TEST_FILES:
        shutil.copy(mnist_dir / f"{name}.gz", data_dir)
    at = _home()
    assert not at.exception
    assert not at.warning
    info = " ".join(_texts(at, "info"))
    assert "MNIST test split found" in info and str(data_dir) in info
    assert mnist_status(data_dir).state == "test only"


def test_download_button_fetches_from_a_mirror_with_a_progress_bar(
    data_dir: Path, mnist_dir: Path, serve_folder
) -> None:
    at = _home()
    at.radio(key="home_download_split").set_value("test only (10,000 digits, 1.6 MB)")
    at.text_input(key="home_download_mirror").set_value(serve_folder(mnist_dir))
    at.button(key="home_download").click().run()
    assert not at.exception
    assert any("downloaded" in text for text in _texts(at, "success")), _texts(at, "error")
    progress = at.get("progress")[0].proto
    assert progress.value == 100 and "verified" in progress.text
    assert mnist_status(data_dir).has_split("test")
    assert all((data_dir / name).stat().st_size > 0 for name in TEST_FILES)


def test_failed_download_explains_the_offline_routes(data_dir: Path, tmp_path: Path, serve_folder) -> None:
    empty_mirror = tmp_path / "empty-mirror"
    empty_mirror.mkdir()
    at = _home()
    at.radio(key="home_download_split").set_value("test only (10,000 digits, 1.6 MB)")
    at.text_input(key="home_download_mirror").set_value(serve_folder(empty_mirror))
    at.button(key="home_download").click().run()
    assert not at.exception
    assert any("Download failed" in text for text in _texts(at, "error"))
    help_text = " ".join(_texts(at, "markdown"))
    assert str(data_dir) in help_text
    assert "FLOWLAB_MNIST_MIRROR" in help_text
    assert "scripts/download_mnist.py --mirror" in help_text
    assert not list(data_dir.iterdir()), "a failed download must leave no file behind"


def test_picture_flow_carries_the_prior_to_two_moons() -> None:
    model = fit_moons_flow(steps=150)
    moons = make_toy("moons", 4000, noise=0.05, seed=3)
    gaussian = make_toy("8gaussians", 4000, seed=3) / 3  # a different 2D shape at a similar scale
    assert model.logProbability(moons).mean() > model.logProbability(gaussian).mean() + 1.0
    angle, stages = flow_stages(model, points=500)
    assert angle.shape == (500,)
    assert stages[0].title.startswith("z ~ N(0, I)") and stages[-1].title.startswith("x = F(z)")
    assert all(len(stage.circles) == len(CIRCLE_RADII) for stage in stages)
