"""TrainConfig validation and serialisation, build_model, and the learning-rate schedule."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from flows import NICE, Logit, RealNVP
from flows.training import TrainConfig, Trainer, build_model
from flows.training.config import DATASETS


def test_defaults_validate_and_survive_a_json_round_trip() -> None:
    config = TrainConfig(model="nice", dataset="moons", hidden=[32, 16], toy_noise=0.2, amp=True)
    assert config.validate() is config
    restored = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert TrainConfig().validate() == TrainConfig.from_dict({})


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match=r"unknown config field.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})


INVALID = [
    ({"model": "glowy"}, "unknown model 'glowy'"),
    ({"dataset": "cifar10"}, "unknown dataset 'cifar10'"),
    ({"activation": "swish"}, "unknown activation"),
    ({"prior": "laplace"}, "unknown prior"),
    ({"split": "diagonal"}, "unknown split"),
    ({"schedule": "step"}, "unknown schedule"),
    ({"hidden": []}, "hidden must be a non-empty list"),
    ({"hidden": [64, 0]}, "hidden layer widths must be positive integers"),
    ({"hidden": [-3]}, "hidden layer widths must be positive integers"),
    ({"blocks": 0}, "blocks must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"steps": -5}, "steps must be a positive integer"),
    ({"warmup_steps": -1}, "warmup_steps must be a non-negative integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"lr": -0.001}, "lr .* must be a positive number"),
    ({"lr": 0.0}, "lr .* must be a positive number"),
    ({"lr": math.nan}, "lr .* must be a positive number"),
    ({"weight_decay": -0.1}, "weight_decay must be a non-negative number"),
    ({"grad_clip": -1.0}, "grad_clip must be a non-negative number"),
    ({"adam_beta2": 1.0}, r"adam_beta2 must lie in \(0, 1\)"),
    ({"min_lr_fraction": 1.5}, "min_lr_fraction must lie in"),
    ({"nan_lr_factor": 0.0}, "nan_lr_factor must lie in"),
    ({"nan_retries": -1}, "nan_retries must be a non-negative integer"),
    ({"logit_alpha": 0.5}, "logit_alpha must lie in"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"amp": "yes"}, "amp must be true or false"),
    ({"dataset": "moons", "split": "checkerboard"}, "checkerboard split needs images"),
    ({"dataset": "moons", "holdout": 100}, "holdout applies to image datasets only"),
    ({"dataset": "moons", "toy_points": 100, "batch_size": 200}, "batch_size 200 is larger than the 100"),
    ({"dataset": "spiral", "toy_noise": -1.0}, "toy_noise must be a number"),
    ({"augment_shift": 5}, "augment_shift must be a whole number of pixels from 0 to 4"),
    ({"augment_shift": 1.5}, "augment_shift must be a whole number of pixels"),
    ({"dataset": "moons", "augment_shift": 1}, "2D toys have no pixels to move"),
]


@pytest.mark.parametrize(("fields", "message"), INVALID, ids=[str(f) for f, _ in INVALID])
def test_each_invalid_field_gets_a_one_line_error(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        TrainConfig(**fields).validate()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("model", ["nice", "realnvp"])
def test_image_models_are_flows_on_784_with_a_logit_last(model: str) -> None:
    config = TrainConfig(model=model, hidden=[8], blocks=1)
    flow = build_model(config)
    assert isinstance(flow, NICE if model == "nice" else RealNVP)
    assert flow.shape == [784]
    assert isinstance(flow.layers[-1], Logit)
    assert flow.layers[0].split.kind == "checkerboard"  # split "auto" for images
    pixels = torch.rand(5, 784)
    assert flow.logProbability(pixels).shape == (5,)
    samples = flow.sample(3)
    assert samples.shape == (3, 784)
    assert float(samples.detach().min()) >= -config.logit_alpha / (1 - 2 * config.logit_alpha)


def test_toy_models_are_flows_on_2_without_a_logit() -> None:
    flow = build_model(TrainConfig(dataset="rings", hidden=[8], blocks=2))
    assert flow.shape == [2]
    assert not any(isinstance(layer, Logit) for layer in flow.layers)
    assert flow.layers[0].split.kind == "half"


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_learning_rate_warms_up_then_follows_the_schedule(schedule: str) -> None:
    config = TrainConfig(
        dataset="moons", toy_points=100, hidden=[4], blocks=1, steps=110, lr=0.01, warmup_steps=10,
        schedule=schedule, min_lr_fraction=0.1, batch_size=8,
    )  # fmt: skip
    trainer = Trainer(config)
    rates = [trainer.learning_rate(step) for step in range(config.steps)]
    assert rates[:10] == pytest.approx([0.001 * (k + 1) for k in range(10)])
    assert rates[10] == pytest.approx(0.01)
    final = {"cosine": 0.001, "linear": 0.001, "constant": 0.01}[schedule]
    assert trainer.learning_rate(config.steps) == pytest.approx(final)
    if schedule == "cosine":
        assert rates[60] == pytest.approx(0.001 + 0.009 * 0.5)  # halfway through the decay
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))


def test_every_dataset_name_is_known_to_validate() -> None:
    for name in DATASETS:
        TrainConfig(dataset=name).validate()
