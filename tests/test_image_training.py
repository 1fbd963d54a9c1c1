"""Image flows in the trainer and the CLI: real digits, labels, presets, checkpoints, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flows import cli
from flows.data import load_mnist
from flows.image import Glow, ImageFlow
from flows.registry import get_family
from flows.training import ConfigError, RunLogger, TrainConfig, Trainer, build_model, preset_config, runs
from flows.training.images import sample_image

SMALL_IMAGE = {"levels": 2, "steps_per_level": 2, "hidden_channels": 16, "residual_blocks": 0}


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs on one intra-op thread (conftest.one_thread)."""


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The real MNIST test digits split 9,000 / 1,000, with their labels."""
    images, labels = load_mnist(mnist_dir, "test")
    return images[:9000], images[9000:], labels[:9000], labels[9000:]


def _common(steps: int) -> dict[str, object]:
    return {"steps": steps, "batch_size": 32, "lr": 2e-3, "warmup_steps": 20, "eval_every": 0}


@pytest.mark.slow
def test_image_flows_beat_the_mlp_realnvp_after_the_same_images(digits) -> None:
    train, test, _, _ = digits
    test = test[:500]
    scores = {}
    for model, options in (
        ("realnvp", {"hidden": [256], "blocks": 4}),
        ("glow", SMALL_IMAGE),
        ("conv-realnvp", SMALL_IMAGE),
    ):
        config = TrainConfig(model=model, **options, **_common(250))
        trainer = Trainer(config, train_data=train, test_data=test)
        history = trainer.run()
        scores[model] = history[-1].best_test_bits_per_dim
    assert scores["glow"] < scores["realnvp"] - 0.2, scores
    assert scores["conv-realnvp"] < scores["realnvp"] - 0.2, scores


@pytest.mark.slow
def test_a_conditional_glow_learns_what_each_label_means(digits) -> None:
    train, test, train_labels, test_labels = digits
    config = TrainConfig(model="glow", conditional=True, **SMALL_IMAGE, **_common(300))
    trainer = Trainer(config, train, test[:300], train_labels, test_labels[:300])
    trainer.run()
    model = trainer.model.eval()
    assert isinstance(model, ImageFlow) and model.num_classes == 10
    x = (test[:300].reshape(300, 1, 28, 28).float() + 0.5) / 256
    with torch.no_grad():  # log p(x | y) for every class y: [10, 300]
        scores = torch.stack([model.logProbability(x, labels=k) for k in range(10)])
    accuracy = float((scores.argmax(0) == test_labels[:300]).float().mean())
    assert accuracy > 0.5, f"the true class should be the likeliest far more often than 1 in 10: {accuracy}"
    picture = sample_image(model, True, 20)  # one class per column: 10 columns of 28 px + padding
    assert picture.shape == (2 * 30 + 2, 10 * 30 + 2)


def test_a_conditional_run_stops_and_resumes_step_for_step(digits, tmp_path: Path) -> None:
    train, test, train_labels, test_labels = digits
    tiny = {"levels": 2, "steps_per_level": 1, "hidden_channels": 8, "residual_blocks": 0}
    config = TrainConfig(model="glow", conditional=True, **tiny, **_common(12), checkpoint_every=0)
    data = (train[:512], test[:64], train_labels[:512], test_labels[:64])
    straight = Trainer(config, *data)
    straight.run()
    run_dir = runs.create_run(tmp_path, config)
    first = Trainer(config, *data)
    first.run(RunLogger(run_dir, first), should_stop=lambda: first.step >= 5)
    resumed = Trainer.from_run(run_dir, None, *data)
    assert resumed.step == 5
    resumed.run(RunLogger(run_dir, resumed))
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), f"{name} differs after stop and resume"
    flags = [k for k, v in resumed.model.state_dict().items() if k.endswith("initialized")]
    assert flags and all(bool(resumed.model.state_dict()[k]) for k in flags)


def test_a_conditional_model_without_labels_is_refused(digits) -> None:
    train, test, _, _ = digits
    config = TrainConfig(model="glow", conditional=True, **SMALL_IMAGE, **_common(1))
    with pytest.raises(ValueError, match="needs the class of every image"):
        Trainer(config, train_data=train[:100], test_data=test[:10])


def test_build_model_gives_image_shaped_flows_ending_in_pixels() -> None:
    model = build_model(TrainConfig(model="glow", **SMALL_IMAGE))
    assert isinstance(model, Glow) and model.shape == [1, 28, 28]
    with torch.no_grad():
        x = model.sample(3)
    assert x.shape == (3, 1, 28, 28) and float(x.min()) > -0.06 and float(x.max()) < 1.06
    assert build_model(TrainConfig(model="realnvp", hidden=[8], blocks=1)).shape == [784]


def test_image_settings_are_checked_and_name_their_field() -> None:
    with pytest.raises(ConfigError, match="has no class-conditional form") as error:
        TrainConfig(model="realnvp", conditional=True).validate()
    assert error.value.field == "conditional"
    with pytest.raises(ConfigError, match="levels 5 is too many for 1x28x28") as error:
        TrainConfig(model="glow", levels=5).validate()
    assert error.value.field == "levels"
    with pytest.raises(ConfigError, match="hidden_channels must be a positive integer") as error:
        TrainConfig(model="conv-realnvp", hidden_channels=0).validate()
    assert error.value.field == "hidden_channels"
    with pytest.raises(ConfigError, match="does not train on toy data") as error:
        TrainConfig(model="glow", dataset="moons").validate()
    assert error.value.field == "model"


def test_the_cli_applies_the_family_preset_under_the_flags_given(tmp_path: Path) -> None:
    preset = get_family("glow").preset("cpu")
    config, _ = cli.make_config(["--model", "glow"])
    assert {name: getattr(config, name) for name in preset} == preset
    config, _ = cli.make_config(["--model", "glow", "--hidden-channels", "24"])
    assert config.hidden_channels == 24 and config.levels == preset["levels"]
    # the MLP flows: their preset on the digits, the plain defaults on a 2D toy (no pixels to move)
    assert preset_config({"model": "realnvp"}) == TrainConfig(**get_family("realnvp").preset("cpu"))
    assert preset_config({"model": "realnvp", "dataset": "moons"}) == TrainConfig(dataset="moons")


def test_main_trains_a_glow_and_reports_its_options(mnist_dir: Path, tmp_path: Path, capsys) -> None:
    code = cli.main(
        [
            "--model", "glow", "--levels", "2", "--steps-per-level", "1", "--hidden-channels", "8",
            "--data-dir", str(mnist_dir), "--holdout", "1000", "--steps", "3", "--batch-size", "16",
            "--eval-every", "3", "--runs-dir", str(tmp_path), "--run-name", "g", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "glow (" in out and "levels 2 · steps_per_level 1 · hidden_channels 8" in out
    assert (tmp_path / "g" / "samples.png").stat().st_size > 100
    assert runs.read_config(tmp_path / "g").model == "glow"


def test_a_conditional_glow_trains_on_the_full_fashion_mnist(fashion_mnist_dir: Path) -> None:
    config = TrainConfig(
        model="glow", dataset="fashion-mnist", data_dir=str(fashion_mnist_dir), conditional=True,
        levels=2, steps_per_level=1, hidden_channels=8, batch_size=16, steps=3, eval_every=0,
        eval_batch_size=2000,
    )  # fmt: skip
    trainer = Trainer(config)
    assert (len(trainer.train_data), len(trainer.test_data)) == (60000, 10000)
    assert trainer.train_labels is not None and int(trainer.train_labels.max()) == 9
    done = trainer.run()[-1]
    assert done.step == 3 and 0 < done.best_test_bits_per_dim < 12
