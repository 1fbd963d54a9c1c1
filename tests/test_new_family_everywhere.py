"""Issue 11's "done when": a family added with one registry entry appears in main.py --help, the Train
page, the Jacobian page and the playground, and the Jacobian page checks it like the built-in ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flows import cli, registry

from .apptest import open_page, use_folders
from .test_registry import TOY

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 180


@pytest.fixture
def toy_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> registry.FlowFamily:
    """The test family, registered for one test, with no MNIST and no runs on disk."""
    use_folders(monkeypatch, tmp_path / "no-mnist", tmp_path / "runs")
    with registry.registered(TOY) as family:
        yield family


def _page(script: str) -> AppTest:
    at = open_page(script, TIMEOUT_S)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _widget(at: AppTest, key: str):
    return next(element for element in at.main if getattr(element, "key", None) == key)


def test_the_command_line_lists_it(
    toy_family: registry.FlowFamily, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "toynice" in capsys.readouterr().out


def test_the_train_page_offers_it(toy_family: registry.FlowFamily) -> None:
    at = _page("pages/train.py")
    model = _widget(at, "train_model")
    assert "toynice" in model.options or toy_family.label in model.options
    _widget(at, "train_dataset").set_value("moons").run()
    _widget(at, "train_model").set_value("toynice").run()
    assert not at.exception and not at.error  # a valid toy run: nothing to complain about


def test_the_jacobian_page_offers_and_checks_it(toy_family: registry.FlowFamily) -> None:
    at = _page("pages/jacobian.py")
    choice = f"Fresh {toy_family.title}"
    assert choice in _widget(at, "jacobian_model").options
    _widget(at, "jacobian_model").set_value(choice).run()
    _widget(at, "jacobian_dims").set_value(8).run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert any("fresh Toy NICE" in text for text in texts), texts


def test_the_playground_offers_it(toy_family: registry.FlowFamily) -> None:
    at = AppTest.from_file(str(REPO / "pages" / "playground.py"), default_timeout=TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    model = _widget(at, "pg_model")
    assert "toynice" in model.options or toy_family.title in model.options


def test_the_playground_race_takes_its_racers_from_the_registry(toy_family: registry.FlowFamily) -> None:
    import torch

    from dashboard.playground.run import FlowSettings, Race

    points = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    race = Race(FlowSettings(hidden=(8,), blocks=2, batch_size=32), points, points[:50], budget=3)
    assert set(race.runs) == {"nice", "realnvp", "toynice"}
    race.advance(chunk=3)
    assert race.finished and set(race.final_nll) == {"nice", "realnvp", "toynice"}
    assert registry.get_family("nice").volume_preserving
    assert not registry.get_family("realnvp").volume_preserving
