"""The shipped example runs (examples/runs/): one per family, they load without pickle, score on the held-out
digits what their metrics say, are read-only, and the pages show them on a fresh clone with no run."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from flows import registry
from flows.training import RunLogger, Trainer, runs
from flows.training.examples import EXAMPLE_PREFIX, examples_dir, list_examples, read_example

from .browser import REPO

APP = str(REPO / "streamlit_app.py")
#: bits/dim: the same weights on the same 1,000 digits with the same noise; only summation order may differ.
TOLERANCE = 1e-3


def folder_digest(folder: Path) -> str:
    """A hash of every file's name and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def examples() -> list[runs.RunInfo]:
    found = list_examples()
    assert found, f"no examples in {examples_dir()}; train them with scripts/train_examples.py"
    return found


def test_every_family_and_the_conditional_model_have_an_example(examples) -> None:
    models = {(info.config.model, info.config.conditional) for info in examples}
    for family in registry.families("image"):
        assert (family.name, False) in models, f"no example of {family.name}"
    assert ("glow", True) in models
    for info in examples:
        assert info.example and info.run_id.startswith(EXAMPLE_PREFIX) and info.checkpoints == [runs.EXPORT]
        assert info.label == f"{info.run_id.removeprefix(EXAMPLE_PREFIX)} (example)"


def test_examples_hold_no_pickle_and_are_small(examples) -> None:
    total = 0
    for info in examples:
        files = [p for p in info.path.rglob("*") if p.is_file()]
        assert not [p for p in files if p.suffix in (".pt", ".pth", ".pkl", ".bin")], info.run_id
        total += sum(p.stat().st_size for p in files)
    assert total < 8_000_000, f"the examples take {total:,} bytes; they are meant to be a few MB"


def test_examples_score_what_their_metrics_say(examples, mnist_dir, monkeypatch) -> None:
    """Held-out bits/dim recomputed by the trainer's own evaluation on the same 1,000 digits."""
    monkeypatch.setenv("FLOWLAB_DATA_DIR", str(mnist_dir))
    torch.set_num_threads(1)
    for info in examples:
        model, config = runs.load_run_model(info.path, runs.EXPORT)
        about = read_example(info.path)
        last_eval = [line for line in runs.read_metrics(info.path) if line["kind"] == "eval"][-1]
        assert last_eval["step"] == about["step"] == config.steps
        assert last_eval["test_bits_per_dim"] == pytest.approx(about["test_bits_per_dim"], abs=1e-12)
        trainer = Trainer(dataclasses.replace(config, ema_decay=0.0, num_threads=1))  # EMA is in the export
        assert len(trainer.test_data) == 1000 and len(trainer.train_data) == 9000
        trainer.model.load_state_dict(model.state_dict())
        measured = trainer.evaluate().test_bits_per_dim
        assert measured == pytest.approx(about["test_bits_per_dim"], abs=TOLERANCE), info.run_id


def test_an_example_cannot_be_written_into(examples, tmp_path, mnist_dir) -> None:
    info = next(i for i in examples if i.config.model == "realnvp")
    before = folder_digest(info.path)
    with pytest.raises(ValueError, match="shipped example and read-only"):
        RunLogger(info.path, Trainer(dataclasses.replace(info.config, data_dir=str(mnist_dir))))
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--resume", str(info.path), "--steps", "1600"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"FLOWLAB_DATA_DIR": str(mnist_dir), "FLOWLAB_NO_SAMPLE_SCORE": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode != 0 and "read-only" in done.stderr, done.stderr[-2000:]
    with pytest.raises(ValueError, match="kept for the shipped examples"):
        runs.create_run(tmp_path / "runs", info.config, name=info.run_id)
    assert folder_digest(info.path) == before


def test_a_fresh_clone_shows_examples_on_samples_jacobian_and_tour(examples, tmp_path, monkeypatch) -> None:
    """No run and no digits on disk (offline): the example's samples are drawn all the same."""
    monkeypatch.setenv("FLOWLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FLOWLAB_DATA_DIR", str(tmp_path / "no-data"))
    app = AppTest.from_file(APP, default_timeout=120)
    app.switch_page("pages/samples.py")
    app.run()
    assert not app.exception
    assert not any("No trained run yet" in info.value for info in app.info)
    picker = next(e for e in app.main if getattr(e, "key", None) == "samples_run")
    assert set(picker.options) == {info.label for info in examples}
    assert any("shipped example" in caption.value for caption in app.caption)
    assert app.image, "no sample grid drawn"
    glow = next(info for info in examples if info.config.model == "glow" and info.config.conditional)
    picker.set_value(glow.run_id).run()
    assert not app.exception
    assert any(e.key == "samples_digit" for e in app.main if getattr(e, "key", None))
    app.switch_page("pages/jacobian.py")
    app.run()
    assert not app.exception
    model_picker = next(e for e in app.main if getattr(e, "key", None) == "jacobian_model")
    assert {f"Run {info.label}" for info in examples} <= set(model_picker.options)
