"""Extending a finished run by more steps or minutes (flows/training/extend.py): exact where the schedule
allows, the schedule laid again over the new total otherwise, clear errors for the wrong kind of extension."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flows.training import RunLogger, TrainConfig, Trainer, runs
from flows.training.config import ConfigError
from flows.training.extend import extension


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """One intra-op thread (conftest.one_thread)."""


def toy_config(**changes: object) -> TrainConfig:
    fields = {"dataset": "moons", "toy_points": 2000, "hidden": [32], "blocks": 2, "batch_size": 64}
    fields.update({"steps": 30, "eval_every": 0, "checkpoint_every": 0, "lr": 3e-3, "warmup_steps": 5})
    fields.update(changes)
    return TrainConfig(**fields)


def train(run_dir: Path, overrides: dict | None = None) -> Trainer:
    """Trains the run in ``run_dir`` (from its last checkpoint, with ``overrides``) to its end."""
    trainer = Trainer.from_run(run_dir, overrides)
    trainer.run(RunLogger(run_dir, trainer))
    return trainer


def step_lines(run_dir: Path) -> dict[int, dict]:
    return {line["step"]: line for line in runs.read_metrics(run_dir) if line["kind"] == "step"}


def test_a_constant_schedule_extended_equals_one_longer_run_bit_for_bit(tmp_path: Path) -> None:
    whole = train(runs.create_run(tmp_path, toy_config(schedule="constant", steps=60), name="whole"))
    parted_dir = runs.create_run(tmp_path, toy_config(schedule="constant", steps=30), name="parted")
    train(parted_dir)
    assert runs.read_status(parted_dir)["state"] == "done"
    changes = extension(parted_dir, more_steps=30)
    assert changes == {"steps": 60}
    parted = train(parted_dir, changes)
    assert parted.step == 60 and runs.read_config(parted_dir).steps == 60
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, parted.model.state_dict()[name]), name
    assert step_lines(parted_dir)[60]["loss"] == step_lines(tmp_path / "whole")[60]["loss"]


def test_a_cosine_schedule_is_laid_again_over_the_new_total(tmp_path: Path) -> None:
    train(runs.create_run(tmp_path, toy_config(steps=60, log_every=1), name="whole"))
    parted_dir = runs.create_run(tmp_path, toy_config(steps=30, log_every=1), name="parted")
    train(parted_dir)
    floor = step_lines(parted_dir)[30]["lr"]
    train(parted_dir, extension(parted_dir, more_steps=30))
    whole, parted = step_lines(tmp_path / "whole"), step_lines(parted_dir)
    for step in range(31, 61):  # from the extension on: the rates of the uninterrupted 60-step run
        assert parted[step]["lr"] == pytest.approx(whole[step]["lr"], rel=1e-12), step
    assert parted[31]["lr"] > 5 * floor  # the rate rises from the old end's floor
    assert parted[30]["lr"] < whole[30]["lr"]  # the first 30 steps had the shorter schedule


def test_a_time_budget_is_extended_by_minutes_and_steps_by_steps(tmp_path: Path) -> None:
    counted = runs.create_run(tmp_path, toy_config(), name="counted")
    train(counted)
    with pytest.raises(ValueError, match="extend it by steps"):
        extension(counted, more_minutes=1)
    with pytest.raises(ValueError, match="one of them"):
        extension(counted, more_steps=10, more_minutes=1)
    with pytest.raises(ValueError, match="one of them"):
        extension(counted)
    budget = runs.create_run(tmp_path, toy_config(minutes=0.002, steps=10**6), name="budget")
    first = train(budget)
    with pytest.raises(ValueError, match="extend it by minutes"):
        extension(budget, more_steps=10)
    changes = extension(budget, more_minutes=0.002)
    trained = runs.load_checkpoint(runs.checkpoint_path(budget, "last"))["elapsed"]  # what a resume restores
    assert 0 < trained <= first.elapsed and changes["minutes"] == pytest.approx(trained / 60 + 0.002)
    second = train(budget, changes)
    assert second.step > first.step and second.elapsed >= 60 * changes["minutes"]


def test_a_step_count_cannot_turn_into_a_time_budget_on_resume() -> None:
    with pytest.raises(ConfigError, match="minutes") as raised:
        toy_config().resumed({"minutes": 1.0})
    assert raised.value.field == "minutes"
    assert toy_config(minutes=1.0).resumed({"minutes": 2.0}).minutes == 2.0


def call_main(argv: list[object]) -> int:
    """flows.cli.main (what main.py runs) in this process; its exit code."""
    from flows import cli

    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exit_:
        return int(exit_.code)


def test_main_more_steps_extends_a_finished_run_as_one_longer_run(tmp_path: Path, capsys) -> None:
    common = ["--dataset", "moons", "--toy-points", "2000", "--hidden", "32", "--blocks", "2"]
    common += ["--threads", "1"]
    common += ["--schedule", "constant", "--warmup-steps", "5", "--eval-every", "0", "--no-progress"]
    common += ["--runs-dir", tmp_path]
    assert call_main([*common, "--steps", "60", "--run-name", "whole"]) == 0
    assert call_main([*common, "--steps", "30", "--run-name", "parted"]) == 0
    parted = tmp_path / "parted"
    capsys.readouterr()
    assert call_main(["--resume", parted, "--no-progress"]) == 0
    assert "pass --more-steps N to go on" in capsys.readouterr().out
    assert call_main(["--resume", parted, "--more-steps", "30", "--no-progress"]) == 0
    assert "starting at step 30 of 60" in capsys.readouterr().out
    whole = runs.load_checkpoint(runs.checkpoint_path(tmp_path / "whole", "last"))
    extended = runs.load_checkpoint(runs.checkpoint_path(parted, "last"))
    assert extended["step"] == whole["step"] == 60
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, extended["model"][name]), name


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--more-steps", "5"], "name it with --resume RUN_DIR"),
        (["--resume", "{run}", "--more-steps", "5", "--steps", "90"], "not both"),
        (["--resume", "{run}", "--more-minutes", "1"], "extend it by steps"),
        (["--resume", "{run}", "--more-steps", "-3"], "a positive number of steps or of minutes"),
    ],
)
def test_main_explains_a_wrong_extension_in_one_line(tmp_path: Path, capsys, flags, message) -> None:
    run = runs.create_run(tmp_path, toy_config(), name="run")
    train(run)
    capsys.readouterr()
    assert call_main([f.format(run=run) for f in flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert runs.read_config(run).steps == 30


def test_main_help_says_how_the_schedule_is_treated(capsys) -> None:
    assert call_main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--more-steps N with --resume: train N more steps" in text
    assert "cosine and linear are laid again over the new total" in text
