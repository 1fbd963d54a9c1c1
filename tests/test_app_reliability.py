"""The dashboard against careless or hostile input, in AppTest: uploads, sizes that would exhaust memory."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.playground.data import UPLOAD_TARGET
from dashboard.services.form_limits import FORM_MAXIMA
from dashboard.text import plain
from flows import limits
from flows.training import TrainConfig, runs

from .apptest import open_page, use_folders
from .browser import REPO
from .conftest import train_in_folder

TIMEOUT_S = 60


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_folders(monkeypatch, tmp_path / "no-mnist", tmp_path / "runs")
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "2")
    return tmp_path / "runs"


def shown_text(markdown: str) -> str:
    """What a visitor reads: markdown's backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def page(path: str) -> AppTest:
    return open_page(path, TIMEOUT_S)


@pytest.fixture(scope="module")
def good_state(tmp_path_factory: pytest.TempPathFactory) -> dict:
    config = TrainConfig(dataset="moons", hidden=[8], blocks=2, batch_size=16, steps=3, toy_points=64)
    source = runs.create_run(tmp_path_factory.mktemp("elsewhere"), config, name="source")
    train_in_folder(config, source)
    return runs.load_checkpoint(runs.checkpoint_path(source, "last"))


def _bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _with(state: dict, **changes: object) -> dict:
    config = {**state["config"], **changes.pop("config", {})}
    return {**state, **changes, "config": config}


BAD_UPLOADS = {
    "step list": ({"step": [1, 2]}, '"step" must be a non-negative integer'),
    "step text": ({"step": "abc"}, '"step" must be a non-negative integer'),
    "huge model": ({"config": {"hidden": [30000, 30000], "blocks": 16}}, "more than the limit of 2.0 GiB"),
    "huge samples": ({"config": {"sample_count": 10**9}}, "sample_count must be at most"),
    "beyond the form": ({"config": {"minutes": 10**5}}, "minutes must be at most 1,440"),
    "weights of another model": ({"config": {"hidden": [9]}}, "another architecture"),
    "config not a dict": ({"config": [1]}, "training config is invalid"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_is_explained_and_writes_nothing(case: str, runs_dir: Path, good_state: dict) -> None:
    changes, words = BAD_UPLOADS[case]
    state = {**good_state, "config": [1]} if case == "config not a dict" else _with(good_state, **changes)
    app = page("pages/train.py")
    app.get("file_uploader")[0].set_value(("bad.pt", _bytes(state), "application/octet-stream")).run()
    assert not app.exception
    assert any(words in shown_text(error.value) for error in app.error), [e.value for e in app.error]
    assert not runs_dir.exists() or not list(runs_dir.glob("upload-*"))  # no half-made run folder


def test_an_upload_cannot_choose_the_servers_folders(runs_dir: Path, good_state: dict) -> None:
    state = _with(good_state, config={"data_dir": "/etc", "num_threads": 64})
    app = page("pages/train.py")
    app.get("file_uploader")[0].set_value(("moons.pt", _bytes(state), "application/octet-stream")).run()
    assert any("Imported as run" in success.value for success in app.success)
    (imported,) = runs_dir.glob("upload-moons-*")
    config = runs.read_config(imported)
    assert (config.data_dir, config.num_threads) == ("", 0)


def test_the_train_form_and_the_upload_check_share_their_bounds(runs_dir: Path) -> None:
    app = page("pages/train.py")
    app.selectbox(key="train_dataset").set_value("moons").run()
    bounded = {"blocks", "lr", "batch_size", "steps", "eval_every", "seed", "minutes", "early_stop"}
    keys = {name: f"train_{name}" for name in bounded} | {"warmup_steps": "train_warmup"}
    for name, key in keys.items():
        assert app.number_input(key=key).max == pytest.approx(FORM_MAXIMA[name]), name


def test_the_train_page_refuses_a_model_that_would_exhaust_memory(runs_dir: Path) -> None:
    app = page("pages/train.py")
    app.selectbox(key="train_dataset").set_value("moons")
    app.text_input(key="train_hidden").set_value("30000, 30000")
    app.number_input(key="train_blocks").set_value(16)
    app.run()
    assert not app.exception
    assert any("more than the limit of 2.0 GiB" in shown_text(error.value) for error in app.error)
    assert next(b for b in app.button if b.key == "train_start").disabled
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_the_model_page_refuses_an_mlp_whose_total_exceeds_the_limit(runs_dir: Path) -> None:
    app = page("pages/model.py")
    app.text_input(key="model_sizes").set_value("50000, 50000, 50000").run()
    assert not app.exception
    assert any("more than the limit of 2.0 GiB" in shown_text(error.value) for error in app.error)
    assert not app.metric


# --- markdown injection -----------------------------------------------------------------------------

IMAGE = "![img](http://host/tracking.png)"
LINK = "[click me](http://host/phish)"
#: Markdown syntax left active: an unescaped image/link bracket, emphasis, or a bare URL that GFM links.
ACTIVE_MARKDOWN = re.compile(r"(?<!\\)[\[\]()!*_`$<>]|://|\bwww\.")


def test_plain_escapes_everything_markdown_would_act_on() -> None:
    for text in (IMAGE, LINK, "*bold* _em_ `code` $x^2$ :red[alarm] # title <b>x</b> www.host.com"):
        escaped = plain(text)
        assert not ACTIVE_MARKDOWN.search(escaped.replace("\\\\", "")), escaped
        assert re.sub(r"\\(.)", r"\1", escaped) == text  # shown exactly as typed


def _shown(app: AppTest) -> list[str]:
    return [e.value for e in (*app.error, *app.warning, *app.info, *app.caption, *app.markdown)]


@pytest.mark.parametrize("run", [IMAGE, LINK])
def test_a_run_in_the_url_is_shown_as_text(run: str, runs_dir: Path) -> None:
    app = open_page("pages/train.py", TIMEOUT_S, run=run)
    assert not app.exception
    shown = [text for text in _shown(app) if "There is no run" in text]
    assert shown, _shown(app)
    for text in shown:
        assert not ACTIVE_MARKDOWN.search(text.replace("\\\\", "").split("There is no run", 1)[1]), text


def test_an_uploaded_file_name_and_a_typed_run_name_are_shown_as_text(runs_dir: Path) -> None:
    app = page("pages/train.py")
    app.get("file_uploader")[0].set_value((f"{IMAGE}.pt", b"junk", "application/octet-stream")).run()
    errors = [e.value for e in app.error]
    assert any("tracking" in text for text in errors)
    assert all("![" not in text and "http://" not in text for text in errors), errors
    app.text_input(key="train_name").set_value(LINK).run()
    errors = [e.value for e in app.error if "click me" in e.value]
    assert errors and all("](" not in text and "http://" not in text for text in errors), errors


def test_a_csv_file_name_and_its_cells_are_shown_as_text(runs_dir: Path) -> None:
    app = AppTest.from_file(str(REPO / "pages" / "playground.py"), default_timeout=120).run()
    app.selectbox(key="pg_target").select(UPLOAD_TARGET).run()
    rows = "\n".join(f"{i},{i % 5}" for i in range(30))
    content = f"x,y\n{rows}\n{LINK},1\n".encode()
    app.file_uploader(key="pg_upload").set_value((f"{IMAGE}.csv", content, "text/csv")).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert any("tracking" in text and "click me" in text for text in errors), errors
    assert all("![" not in text and "](" not in text and "http://" not in text for text in errors), errors


# --- classroom mode -----------------------------------------------------------------------------------


def _start_button(app: AppTest):
    return next(b for b in app.button if b.key == "train_start")


def _toy_settings(app: AppTest) -> None:
    app.selectbox(key="train_dataset").set_value("moons")
    app.text_input(key="train_hidden").set_value("8")
    app.number_input(key="train_blocks").set_value(1)
    app.number_input(key="train_batch_size").set_value(16)
    app.number_input(key="train_steps").set_value(1_000_000)
    app.run()


def test_classroom_mode_lets_visitors_watch_and_only_the_teacher_act(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(access.TOKEN_ENV, "s3cret")
    visitor = page("pages/train.py")
    _toy_settings(visitor)  # valid settings: only the mode keeps Start disabled
    assert _start_button(visitor).disabled
    assert not visitor.get("file_uploader")  # no upload for visitors
    assert any("only the teacher" in c.value for c in visitor.caption)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())

    home = page("pages/home.py")
    assert next(b for b in home.button if b.key == "home_download").disabled
    assert home.text_input(key="home_download_mirror").disabled

    assert not access.sign_in("wrong") and not access.sign_in("s3cre") and not access.can_control()
    assert access.sign_in(" s3cret ") and access.can_control()

    teacher = open_page("pages/train.py", TIMEOUT_S, run_now=False)
    teacher.session_state[access.TEACHER_KEY] = True  # what the sidebar's token form sets
    teacher.run()
    _toy_settings(teacher)
    assert not _start_button(teacher).disabled and teacher.get("file_uploader")
    _start_button(teacher).click().run()
    assert not teacher.exception
    (run,) = runs_dir.iterdir()
    next(b for b in teacher.button if b.key == f"stop-{run.name}").click().run()


def test_without_a_token_every_session_controls_everything(runs_dir: Path) -> None:
    assert not access.classroom_mode() and access.can_control()
    app = page("pages/train.py")
    assert app.get("file_uploader") and not any("only the teacher" in c.value for c in app.caption)


def test_one_session_may_queue_only_so_many_runs(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(access.MAX_QUEUED_ENV, "1")
    app = page("pages/train.py")
    _toy_settings(app)
    _start_button(app).click().run()
    (first,) = runs_dir.iterdir()
    _start_button(app).click().run()
    assert any("already has 1 runs queued or training" in shown_text(e.value) for e in app.error)
    assert len(list(runs_dir.iterdir())) == 1
    next(b for b in app.button if b.key == f"stop-{first.name}").click().run()
