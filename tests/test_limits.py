"""Memory estimates from a model's config, made on the meta device before any weight exists."""

from __future__ import annotations

import resource

import pytest
import torch

from flows import MLP, limits
from flows.training import TrainConfig, build_model
from flows.training.factory import estimate_memory


@pytest.fixture(autouse=True)
def _limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "2")


def test_the_estimate_counts_exactly_the_parameters_the_built_model_has() -> None:
    for config in (
        TrainConfig(),
        TrainConfig(model="nice", blocks=2),
        TrainConfig(dataset="moons", hidden=[64]),
    ):
        built = sum(p.numel() for p in build_model(config).parameters())
        estimate = estimate_memory(config)
        assert estimate.parameters == built
        assert estimate.state_bytes == built * 4 * limits.TRAINING_COPIES
        assert estimate.activation_bytes > 0  # one batch's saved tensors, measured on meta tensors


def test_activations_grow_with_the_batch() -> None:
    small, large = (estimate_memory(TrainConfig(batch_size=b)).activation_bytes for b in (16, 64))
    assert large == pytest.approx(4 * small, rel=0.05)


def test_a_huge_config_is_refused_before_anything_is_allocated() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(limits.MemoryLimitError) as caught:
        build_model(TrainConfig(hidden=[30000, 30000], blocks=16))  # the 59 G parameters
    message = str(caught.value)
    assert "59,109,157,632 parameters" in message and "TiB" in message and "2.0 GiB" in message
    assert "lower hidden sizes" in message and limits.MEMORY_LIMIT_ENV in message
    assert "\n" not in message
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024  # not the 3.8 GiB it reached on main


def test_the_limit_is_configurable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(hidden=[2048, 2048], blocks=8)  # about 1.6 GiB of training state
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "1")
    with pytest.raises(ValueError, match=r"more than the limit of 1\.0 GiB"):
        build_model(config)
    monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, "64")
    limits.check_fits(estimate_memory(config))  # fits now
    for bad in ("0", "-1", "lots", "inf", "nan"):
        monkeypatch.setenv(limits.MEMORY_LIMIT_ENV, bad)
        with pytest.raises(ValueError, match=limits.MEMORY_LIMIT_ENV):
            limits.memory_limit_bytes()
    monkeypatch.delenv(limits.MEMORY_LIMIT_ENV)
    assert limits.memory_limit_bytes() > 0  # half the machine's RAM


def test_any_module_can_be_estimated_and_sizes_beyond_int64_are_refused() -> None:
    estimate = limits.estimate_training_memory(lambda: MLP([50000, 50000, 50000], ["relu", None]), copies=1)
    assert estimate.parameters == 2 * (50000 * 50000 + 50000)
    with pytest.raises(limits.MemoryLimitError, match="more than the limit"):
        limits.check_fits(estimate)
    with pytest.raises(limits.MemoryLimitError, match="too large to build"):
        limits.estimate_training_memory(lambda: torch.nn.Linear(2**62, 2**62))
