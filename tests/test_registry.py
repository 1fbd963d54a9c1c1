"""The flow-family registry and the one configuration: a toy family registered here reaches the
trainer and the command line; errors name their field; resume rules and data plans live in the library."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch

from flows import NICE, Flow, Gaussian, Logit, Prior, cli, infra, registry
from flows.training import ConfigError, TrainConfig, Trainer, build_model, plan_data
from flows.training.flags import add_config_flags, parse_widths

REPO = Path(__file__).resolve().parents[1]


class ReversedNICE(NICE):
    """A toy family: NICE without its scaling layer, built with half the blocks."""

    def __init__(self, prior: Prior, blocks: int = 2, hidden: Sequence[int] = (8,)) -> None:
        super().__init__(prior, hidden=hidden, blocks=max(1, blocks // 2), scaling=False)


TOY = registry.FlowFamily(
    "toynice", ReversedNICE, "Toy NICE (test)", options=("blocks", "hidden"), description="a test family"
)


@pytest.fixture
def toy_family() -> registry.FlowFamily:
    with registry.registered(TOY) as family:
        yield family


def test_a_registered_family_is_built_trained_and_listed(toy_family: registry.FlowFamily) -> None:
    assert "toynice" in registry.family_names("toy") and "toynice" in registry.family_names("image")
    config = TrainConfig(model="toynice", dataset="moons", blocks=4, hidden=[8], toy_points=500, steps=3)
    model = build_model(config)
    assert isinstance(model, ReversedNICE) and len(model.layers) == 4  # blocks // 2 = 2 blocks, no scaling
    image_model = build_model(TrainConfig(model="toynice", blocks=2, hidden=[8]))
    assert isinstance(image_model.layers[-1], Logit)  # images end in pixel space whatever the family
    history = Trainer(replace(config, eval_every=0, checkpoint_every=0)).run()
    assert history[-1].kind == "done" and history[-1].step == 3
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    assert "toynice" in parser.format_help()


def test_main_help_lists_a_registered_family(
    toy_family: registry.FlowFamily, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "toynice" in capsys.readouterr().out


def test_unknown_names_are_errors_listing_the_choices() -> None:
    with pytest.raises(
        ValueError, match="unknown model 'glowy'; choose one of realnvp, nice, conv-realnvp, glow"
    ):
        registry.get_family("glowy")
    with pytest.raises(ConfigError, match="unknown model 'glowy'") as error:
        TrainConfig(model="glowy").validate()
    assert error.value.field == "model"
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get_family("nice"))


def test_a_family_that_does_not_suit_the_data_is_refused_on_the_model_field() -> None:
    images_only = registry.FlowFamily("imgonly", NICE, "Images only (test)", data_kinds=("image",))
    with registry.registered(images_only):
        assert "imgonly" not in registry.family_names("toy")
        TrainConfig(model="imgonly").validate()
        with pytest.raises(ConfigError, match="does not train on toy data") as error:
            TrainConfig(model="imgonly", dataset="moons").validate()
        assert error.value.field == "model"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"lr": -1.0}, "lr"), ({"hidden": [0]}, "hidden"), ({"dataset": "moons", "holdout": 5}, "holdout")],
)
def test_config_errors_name_their_field(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        TrainConfig(**changes).validate()
    assert error.value.field == field


def test_every_field_has_help_and_a_flag_and_resume_rules_live_on_the_config() -> None:
    for item in fields(TrainConfig):
        assert TrainConfig.help(item.name), item.name
    assert TrainConfig.flag("num_threads") == "--threads" and TrainConfig.flag("batch_size") == "--batch-size"
    saved = TrainConfig(steps=100)
    assert saved.resumed({"steps": 200, "lr": saved.lr}).steps == 200  # an unchanged frozen field is fine
    with pytest.raises(ConfigError, match="--blocks, --lr cannot change when resuming") as error:
        saved.resumed({"lr": 0.5, "blocks": 3, "steps": 200}, describe=TrainConfig.flag)
    assert error.value.field == "blocks"


def test_one_width_parser() -> None:
    assert parse_widths("256, 256") == parse_widths("256 256") == parse_widths("256,256") == [256, 256]
    with pytest.raises(ValueError, match=r"separated by commas, e\.g\. 256, 256"):
        parse_widths("256, lots")


def test_the_cli_plans_image_data_as_the_dashboard_does(mnist_dir: Path) -> None:
    """Only the t10k files: main.py holds out the last 1,000 test digits by itself."""
    config, plan = plan_data(TrainConfig(data_dir=str(mnist_dir)))
    assert config.holdout == 1000 and plan is not None and "9,000" in plan.note
    parsed, _ = cli.make_config(["--data-dir", str(mnist_dir)])
    assert parsed.holdout == 1000
    kept, _ = plan_data(TrainConfig(data_dir=str(mnist_dir), holdout=500))
    assert kept.holdout == 500  # an explicit holdout is kept
    toy, no_plan = plan_data(TrainConfig(dataset="moons"))
    assert no_plan is None and toy == TrainConfig(dataset="moons")


def test_logit_support_is_the_open_box_and_outside_it_the_density_is_zero() -> None:
    logit = Logit(0.05)
    low, high = logit.support()
    assert low == pytest.approx(-0.05 / 0.9) and high == pytest.approx(0.95 / 0.9)
    z = torch.tensor([[-30.0, 30.0], [0.0, 1.0]], dtype=torch.float64)
    x, _ = logit(z)
    assert (x > low).all() and (x < high).all() and x[0, 0] < 0 < 1 < x[0, 1]  # beyond [0, 1)
    flow = Flow(Gaussian([2]), [logit]).double()
    points = torch.tensor(
        [[0.5, 0.5], [0.5, high + 1e-3], [low - 1e-3, 0.5], [1.04, -0.05]], dtype=torch.float64
    )
    log_p = flow.logProbability(points)
    assert torch.isfinite(log_p[[0, 3]]).all() and torch.isneginf(log_p[[1, 2]]).all()


def test_stale_temp_files_of_dead_writers_go_and_live_ones_stay(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    (tmp_path / f".a.bin.{dead_pid}.0000abcd.tmp").write_bytes(b"x")
    (tmp_path / f".a.bin.{os.getpid()}.0000abcd.tmp").write_bytes(b"x")
    removed = infra.remove_stale_temp_files(tmp_path)
    assert [p.name for p in removed] == [f".a.bin.{dead_pid}.0000abcd.tmp"]
    infra.atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert oct((tmp_path / "a.bin").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
