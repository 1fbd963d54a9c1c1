"""The Trainer: it learns real digits, evaluates exactly, survives NaNs, stops and resumes exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from flows.data import bits_per_dim, dequantize, load_mnist, make_toy
from flows.training import Event, NonFiniteLossError, RunLogger, TrainConfig, Trainer, runs
from flows.training.held_out import EVAL_NOISE_SEED

TINY = {"hidden": [64], "blocks": 2, "eval_every": 0}


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs on one intra-op thread (conftest.one_thread)."""


def _held_out_split(mnist_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, _ = load_mnist(mnist_dir, "test")
    return images[:9000], images[9000:]


def _diagonal_gaussian_bits_per_dim(train: torch.Tensor, test: torch.Tensor) -> float:
    """A per-pixel Gaussian fitted to dequantized training pixels, scored on dequantized test pixels."""
    x = dequantize(train.reshape(len(train), -1), torch.Generator().manual_seed(1)).double()
    y = dequantize(test.reshape(len(test), -1), torch.Generator().manual_seed(2)).double()
    mean, var = x.mean(0), x.var(0)
    log_prob = (-0.5 * (y - mean).square() / var - 0.5 * torch.log(2 * math.pi * var)).sum(1)
    return float(bits_per_dim(log_prob.mean(), 784))


@pytest.mark.parametrize("model", ["realnvp", "nice"])
def test_training_on_real_digits_beats_the_untrained_flow_and_a_diagonal_gaussian(
    mnist_dir: Path, model: str
) -> None:
    train, test = _held_out_split(mnist_dir)
    config = TrainConfig(model=model, steps=300, batch_size=64, lr=2e-3, warmup_steps=20, **TINY)
    trainer = Trainer(config, train_data=train, test_data=test)
    untrained = trainer.evaluate().test_bits_per_dim
    history = trainer.run()
    trained = history[-1].best_test_bits_per_dim
    gaussian = _diagonal_gaussian_bits_per_dim(train, test)
    assert trainer.step == 300
    assert trained < untrained - 3, (trained, untrained)
    assert trained < gaussian - 0.3, (trained, gaussian)


def test_holdout_trains_on_the_first_9000_test_digits_and_tests_on_the_last_1000(mnist_dir: Path) -> None:
    config = TrainConfig(data_dir=str(mnist_dir), holdout=1000, steps=1, **TINY)
    trainer = Trainer(config)
    train, test = _held_out_split(mnist_dir)
    assert torch.equal(trainer.train_data, train.reshape(9000, 784))
    assert torch.equal(trainer.test_data, test.reshape(1000, 784))


def test_evaluation_scores_every_test_digit_with_fixed_noise(mnist_dir: Path) -> None:
    train, test = _held_out_split(mnist_dir)
    config = TrainConfig(eval_batch_size=300, steps=5, **TINY)  # batches of 300, 300, 300 and 100
    trainer = Trainer(config, train_data=train, test_data=test)
    trainer.run()
    first, second = trainer.evaluate(), trainer.evaluate()
    assert first.test_loss == second.test_loss
    noise = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    with torch.no_grad():
        log_prob = trainer.model.logProbability(dequantize(test.reshape(1000, 784), noise)).double()
    assert first.test_loss == pytest.approx(-float(log_prob.mean()), rel=1e-6)
    assert first.test_bits_per_dim == pytest.approx(float(bits_per_dim(log_prob.mean(), 784)), rel=1e-6)


def _toy_config(**changes: object) -> TrainConfig:
    fields = {"dataset": "moons", "toy_points": 2000, "hidden": [32], "blocks": 2, "batch_size": 64}
    fields.update({"steps": 40, "eval_every": 0, "checkpoint_every": 0, "lr": 3e-3, "warmup_steps": 5})
    fields.update(changes)
    return TrainConfig(**fields)


def _losses(history: list[Event]) -> list[float]:
    return [event.loss for event in history if event.kind == "step"]


def test_a_nan_loss_is_rejected_the_last_good_state_restored_and_the_lr_lowered(tmp_path: Path) -> None:
    run_dir = runs.create_run(tmp_path, _toy_config(steps=30))
    trainer = Trainer(runs.read_config(run_dir))
    trainer.snapshot_every = 5
    poisoned = []

    def poison_step_13_once(step: int, batch: torch.Tensor) -> torch.Tensor:
        if step == 12 and not poisoned:
            poisoned.append(step)
            return batch.index_fill(0, torch.tensor([0]), math.nan)  # one sample's coordinates become NaN
        return batch

    trainer.batch_hook = poison_step_13_once
    good_states, restored = {}, {}

    def watch(event: Event) -> None:
        if event.kind == "step":
            good_states[event.step] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        if event.kind == "nan":
            restored.update({k: v.clone() for k, v in trainer.model.state_dict().items()})

    history = trainer.run(on_event=[RunLogger(run_dir, trainer), watch])
    nan_events = [event for event in history if event.kind == "nan"]
    assert len(nan_events) == 1 and nan_events[0].restored_step == 10 and math.isnan(nan_events[0].loss)
    assert all(torch.equal(restored[k], good_states[10][k]) for k in restored)  # back to step 10's weights
    steps = [event for event in history if event.kind == "step"]
    assert len(steps) == 30 and trainer.step == 30
    assert steps[12].lr == pytest.approx(0.5 * trainer.learning_rate(12) / trainer.lr_scale)
    assert trainer.lr_scale == 0.5
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    logged = [r for r in runs.read_metrics(run_dir) if r["kind"] == "nan"]
    assert len(logged) == 1 and "step rejected" in logged[0]["message"] and logged[0]["loss"] is None


def test_a_loss_that_keeps_turning_nan_stops_the_run_with_a_clear_message(tmp_path: Path) -> None:
    run_dir = runs.create_run(tmp_path, _toy_config(nan_retries=3))
    trainer = Trainer(runs.read_config(run_dir))
    trainer.batch_hook = lambda step, batch: batch * math.inf
    with pytest.raises(NonFiniteLossError, match=r"not finite 4 times .*nan_retries = 3.*lower --lr"):
        trainer.run(RunLogger(run_dir, trainer))
    assert trainer.step == 0
    assert runs.read_status(run_dir)["state"] == "failed"
    assert len([r for r in runs.read_metrics(run_dir) if r["kind"] == "nan"]) == 4


def test_should_stop_writes_a_checkpoint_and_from_run_continues_step_for_step(tmp_path: Path) -> None:
    uninterrupted = _losses(Trainer(_toy_config()).run())
    run_dir = runs.create_run(tmp_path, _toy_config())
    first = Trainer(runs.read_config(run_dir))
    history = first.run(RunLogger(run_dir, first), should_stop=lambda: first.step >= 15)
    assert (history[-1].kind, history[-1].reason, history[-1].step) == ("done", "stopped", 15)
    assert runs.load_checkpoint(runs.checkpoint_path(run_dir, "last"))["step"] == 15
    assert runs.read_status(run_dir)["state"] == "stopped"
    resumed = Trainer.from_run(run_dir)
    assert resumed.step == 15
    assert _losses(history) + _losses(resumed.run(RunLogger(run_dir, resumed))) == uninterrupted
    assert [r["step"] for r in runs.read_metrics(run_dir) if r["kind"] == "step"] == list(range(10, 41, 10))


def test_toy_training_beats_a_fitted_gaussian_and_draws_a_density_image(tmp_path: Path) -> None:
    config = _toy_config(steps=300, hidden=[64], blocks=4, eval_every=100, checkpoint_every=100)
    run_dir = runs.create_run(tmp_path, config)
    trainer = Trainer(config)
    untrained = trainer.evaluate().test_loss
    history = trainer.run(RunLogger(run_dir, trainer))
    evals = [event for event in history if event.kind == "eval"]
    assert [e.step for e in evals] == [100, 200, 300] and evals[-1].test_bits_per_dim is None
    train, test = trainer.train_data.double(), trainer.test_data.double()
    gaussian = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
    gaussian_loss = -float(gaussian.log_prob(test).mean())
    assert history[-1].best_test_loss < min(untrained, gaussian_loss) - 0.2
    assert (run_dir / runs.SAMPLES_FILE).read_bytes().startswith(b"\x89PNG")
    assert {p.name for p in (run_dir / runs.CHECKPOINT_DIR).iterdir()} == {"last.pt", "best.pt"}


def test_toy_data_is_reproducible_from_the_seed() -> None:
    trainer = Trainer(_toy_config(seed=5))
    assert torch.equal(trainer.train_data, make_toy("moons", 2000, None, seed=5))
    assert not torch.equal(trainer.train_data[:100], trainer.test_data[:100])


def test_adam_beta2_reaches_the_optimizer_and_changes_the_step() -> None:
    default, faster = Trainer(_toy_config()), Trainer(_toy_config(adam_beta2=0.9))
    assert default.optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    assert faster.optimizer.param_groups[0]["betas"] == (0.9, 0.9)
    for trainer in (default, faster):
        for _ in range(3):
            trainer.train_step()
    pairs = zip(default.model.parameters(), faster.model.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)  # same seed and batches: only beta2 differs


def test_data_with_an_odd_number_of_coordinates_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"has 3 coordinates per sample.*must be even"):
        Trainer(_toy_config(), train_data=torch.randn(100, 3), test_data=torch.randn(10, 2))


def test_images_must_be_raw_pixels_and_the_batch_must_fit_the_data() -> None:
    images = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
    with pytest.raises(ValueError, match="must hold uint8 images"):
        Trainer(TrainConfig(**TINY), train_data=images.float() / 255, test_data=images)
    with pytest.raises(ValueError, match="batch_size 64 is larger than the 10 training samples"):
        Trainer(TrainConfig(**TINY), train_data=images, test_data=images)


def test_amp_runs_the_couplings_in_bfloat16_on_cpu() -> None:
    trainer = Trainer(_toy_config(amp=True, steps=5))
    dtypes = set()
    dense = trainer.model.layers[0].shift.net[0]
    dense.register_forward_hook(lambda module, args, output: dtypes.add(output.dtype))
    losses = [trainer.train_step().loss for _ in range(5)]
    assert dtypes == {torch.bfloat16}
    assert len(losses) == 5 and all(math.isfinite(loss) for loss in losses)


def test_augment_shift_trains_on_moved_digits_and_keeps_the_test_split_as_it_is(mnist_dir: Path) -> None:
    train, test = _held_out_split(mnist_dir)
    plain = Trainer(TrainConfig(**TINY), train_data=train, test_data=test)
    shifted = Trainer(TrainConfig(**TINY, augment_shift=2), train_data=train, test_data=test)
    pixels = [(trainer.next_batch() * 256).floor().reshape(-1, 28, 28) for trainer in (plain, shifted)]
    moved = 0
    for drawn, trained_on in zip(*pixels, strict=True):  # the same seed draws the same digits
        padded = torch.nn.functional.pad(drawn, (2, 2, 2, 2))
        offsets = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(padded[2 - dy : 30 - dy, 2 - dx : 30 - dx], trained_on)  # moved, zeros moved in
        ]
        assert offsets, "a training digit is not the drawn digit moved by at most 2 pixels"
        moved += offsets != [(0, 0)]
    assert moved > len(pixels[0]) // 2  # 24 of the 25 offsets move the digit
    assert torch.equal(shifted.test_data, plain.test_data)
