"""Quality watched while training: the sample score in metrics.jsonl, a moving average of the weights,
the overfitting warning, early stop, best.pt first, and a wall-time budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from flows.evaluation import SampleScorer
from flows.training import EvalEvent, OverfitEvent, RunLogger, TrainConfig, Trainer, runs
from flows.training.ema import WeightAverage
from flows.training.held_out import OVERFIT_MARGIN_BITS

TINY = {"hidden": [32], "blocks": 2, "batch_size": 32, "warmup_steps": 5}


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs on one intra-op thread (conftest.one_thread)."""


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from flows.data import load_mnist

    images, _ = load_mnist(mnist_dir, "test")
    return images[:2000], images[9000:9500]


def scripted_evaluations(trainer: Trainer, test_bits: list[float]) -> None:
    """Makes ``trainer.evaluate`` report the given held-out bits/dim in turn (the training is real)."""
    values = iter(test_bits)

    def evaluate() -> EvalEvent:
        bits = next(values)
        loss = (8 - bits) * -784 * torch.log(torch.tensor(2.0)).item()  # bits = 8 - log p / (784 ln 2)
        return EvalEvent(step=trainer.step, elapsed=trainer.elapsed, test_loss=loss, test_bits_per_dim=bits)

    trainer.evaluate = evaluate


def test_every_evaluation_writes_the_sample_score(digits, judge_cache, tmp_path) -> None:
    judge, _, _ = judge_cache
    train, test = digits
    config = TrainConfig(steps=20, eval_every=10, **TINY)
    trainer = Trainer(config, train, test, sample_scorer=SampleScorer("mnist", None, 64, judge=judge))
    run = runs.create_run(tmp_path, config, name="scored")
    trainer.run(on_event=RunLogger(run, trainer))
    evaluations = [line for line in runs.read_metrics(run) if line["kind"] == "eval"]
    assert [line["step"] for line in evaluations] == [10, 20]
    for line in evaluations:
        score = line["sample_score"]
        assert score["count"] == 64 and score["temperature"] == 0.7
        assert 0 <= score["recognised"] <= 1 and score["frechet"] > score["real"]["frechet"]
        assert score["real"]["recognised"] >= 0.8
        assert line["train_bits_per_dim"] > line["test_bits_per_dim"] - 3  # a training figure beside it


def test_without_a_scorer_no_score_is_written(digits) -> None:
    train, test = digits
    history = Trainer(TrainConfig(steps=5, **TINY), train, test).run()
    assert [e.sample_score for e in history if isinstance(e, EvalEvent)] == [None]


def test_held_out_rising_while_training_falls_is_reported_and_early_stop_ends_the_run(digits) -> None:
    train, test = digits
    config = TrainConfig(steps=200, eval_every=10, early_stop=3, **TINY)
    trainer = Trainer(config, train, test)
    scripted_evaluations(trainer, [6.0, 5.0, 5.02, 5.2, 5.4, 9.0])
    history = trainer.run()
    warnings = [e for e in history if isinstance(e, OverfitEvent)]
    # 5.02 is within the margin of the best (5.0); 5.2 and 5.4 are not, while training kept falling.
    assert OVERFIT_MARGIN_BITS < 0.2
    assert [(w.step, w.test_bits_per_dim, w.best_step) for w in warnings] == [(40, 5.2, 20), (50, 5.4, 20)]
    assert all(w.train_bits_per_dim < w.best_train_bits_per_dim for w in warnings)
    assert "0.400 above its best (5.000 at step 20)" in warnings[1].message
    done = history[-1]
    assert (done.reason, done.step) == ("early stop", 50)  # three evaluations without a new best


def test_the_weight_average_is_what_evaluation_sampling_and_best_pt_use(digits, tmp_path) -> None:
    train, test = digits
    config = TrainConfig(steps=30, eval_every=30, ema_decay=0.9, **TINY)
    trainer = Trainer(config, train, test)
    run = runs.create_run(tmp_path, config, name="ema")
    history = trainer.run(on_event=RunLogger(run, trainer))
    state = runs.load_checkpoint(runs.checkpoint_path(run, "best"))
    average, own = state["ema"]["average"], state["model"]
    assert any(not torch.equal(average[name], own[name]) for name in own)
    model, _ = runs.load_run_model(run, "best")
    assert all(torch.equal(value, average[name]) for name, value in model.state_dict().items())
    # the evaluation scored the averaged weights, and the trainer's own weights came back afterwards
    evaluation = next(e for e in history if isinstance(e, EvalEvent))
    with_average = Trainer(replace(config, ema_decay=0.0), train, test)
    with_average.model.load_state_dict(average)
    assert with_average.evaluate().test_loss == pytest.approx(evaluation.test_loss, rel=1e-6)
    assert all(torch.equal(value, own[name]) for name, value in trainer.model.state_dict().items())


def test_weight_average_follows_its_formula() -> None:
    layer = torch.nn.Linear(2, 1)
    average = WeightAverage(layer, decay=0.5)
    start = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
    average.update(layer)  # first update: decay min(0.5, 2 / 11) = 2/11
    assert torch.allclose(average.average["weight"], start + 9 / 11)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(layer, decay=1.0)


def test_a_time_budget_ends_the_run_and_lays_the_schedule_over_it(digits) -> None:
    train, test = digits
    config = TrainConfig(steps=10, minutes=0.02, eval_every=0, **TINY)  # 1.2 s; steps no longer count
    trainer = Trainer(config, train, test)
    assert trainer.learning_rate(10**6) == pytest.approx(config.lr)  # no time has passed yet
    trainer._elapsed_before = 0.6  # half the budget
    assert trainer.learning_rate(10**6) == pytest.approx(config.lr * (1 + config.min_lr_fraction) / 2)
    trainer._elapsed_before = 0.0
    history = Trainer(config, train, test).run()
    done = history[-1]
    assert done.reason == "time" and done.step > 10 and 1.2 <= done.elapsed < 30
    # then evaluated and checkpointed at the end
    assert [e.kind for e in history[-4:]] == ["eval", "checkpoint", "checkpoint", "done"]
    with pytest.raises(ValueError, match="minutes"):
        TrainConfig(minutes=-1).validate()


def test_best_is_the_checkpoint_offered_first(digits, tmp_path) -> None:
    train, test = digits
    config = TrainConfig(steps=4, **TINY)
    run = runs.create_run(tmp_path, config, name="both")
    trainer = Trainer(config, train, test)
    trainer.run(on_event=RunLogger(run, trainer))
    assert runs.run_info(run).checkpoints == ["best", "last"]
