"""The sample judge (flows.evaluation): trained once on real MNIST digits, then asked about real digits,
noise and a single class; its cache and its Frechet distance on their own."""

from __future__ import annotations

import json
import math

import pytest
import torch

from flows.data import load_mnist
from flows.evaluation import frechet_distance, load_judge
from flows.evaluation.judge import JUDGE_VERSION, _cache_paths, _read_cache


def test_the_judge_trains_once_and_says_how_well(judge_cache) -> None:
    judge, cache, messages = judge_cache
    assert judge.trained
    assert judge.accuracy >= 0.95, judge.info
    assert any("held-out accuracy" in message for message in messages)
    weights, info = _cache_paths(cache, "mnist")
    assert weights.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    assert json.loads(info.read_text())["heldout_accuracy"] == judge.accuracy


def test_a_second_load_reads_the_cache_and_scores_the_same(judge_cache, mnist_dir) -> None:
    judge, cache, _ = judge_cache
    again = load_judge("mnist", mnist_dir, cache)
    assert not again.trained
    assert again.accuracy == judge.accuracy
    noise = torch.rand(200, 784, generator=torch.Generator().manual_seed(3))
    assert again.score(noise) == judge.score(noise)


def test_a_cache_of_another_version_is_not_used(judge_cache) -> None:
    _, cache, _ = judge_cache
    expected = {"version": JUDGE_VERSION, "dataset": "mnist"}
    assert _read_cache(cache, "mnist", expected) is not None
    assert _read_cache(cache, "mnist", {**expected, "version": JUDGE_VERSION + 1}) is None
    assert _read_cache(cache, "fashion-mnist", expected) is None


def test_real_digits_score_high(judge_cache) -> None:
    judge, _, _ = judge_cache
    real = judge.real_score()
    assert real.count == 1000
    assert real.recognised >= 0.85
    assert real.class_entropy_bits >= 3.25  # all ten classes, nearly evenly (log2 10 = 3.32)
    assert min(real.class_counts) > 50


def test_noise_scores_low(judge_cache) -> None:
    judge, _, _ = judge_cache
    real = judge.real_score(500)
    for noise in (torch.rand(500, 28, 28), (0.3 + 0.1 * torch.randn(500, 784)).clamp(0, 1)):
        score = judge.score(noise)
        assert score.recognised <= 0.05
        assert score.frechet > 20 * real.frechet


def test_one_class_has_no_entropy(judge_cache, mnist_dir) -> None:
    judge, _, _ = judge_cache
    images, labels = load_mnist(mnist_dir, "test")
    ones = images[-1000:][labels[-1000:] == 1]  # uint8 digits are accepted as they are
    score = judge.score(ones)
    assert score.class_counts[1] >= 0.97 * len(ones)
    assert score.class_entropy_bits < 0.2
    assert score.recognised >= 0.85


def test_the_judge_rejects_images_of_another_size(judge_cache) -> None:
    judge, _, _ = judge_cache
    with pytest.raises(ValueError, match="28 x 28"):
        judge.score(torch.rand(10, 32, 32))


def test_frechet_distance_of_a_scaled_and_shifted_set() -> None:
    # b = c a + m: S_b = c^2 S_a, so FD = |mean a - mean b|^2 + (1 - c)^2 Tr S_a exactly.
    a = torch.randn(500, 6, dtype=torch.float64) @ torch.randn(6, 6, dtype=torch.float64)
    shift = torch.arange(6, dtype=torch.float64)
    b = 0.5 * a + shift
    mean_gap = a.mean(0) - b.mean(0)
    expected = float(mean_gap.square().sum() + 0.25 * torch.trace(torch.cov(a.T)))
    assert math.isclose(frechet_distance(a, b), expected, rel_tol=1e-6)
    assert frechet_distance(a, a) < 1e-6


def test_judge_cached_says_whether_loading_is_quick(judge_cache, mnist_dir, tmp_path) -> None:
    from flows.evaluation import judge_cached

    _, cache, _ = judge_cache
    assert judge_cached("mnist", mnist_dir, cache)
    assert not judge_cached("mnist", mnist_dir, tmp_path)


def test_the_judge_trains_under_no_grad_as_an_evaluation_calls_it(mnist_dir) -> None:
    """The Train page's first evaluation trains the judge inside torch.no_grad(): it must still learn."""
    from flows.evaluation.judge import SEED, Classifier, train_classifier

    images, labels = load_mnist(mnist_dir, "test")
    images = images[:256].float().div(255).unsqueeze(1)
    torch.manual_seed(SEED)
    untrained = Classifier().state_dict()
    with torch.no_grad():
        classifier = train_classifier(images, labels[:256])
    trained = classifier.state_dict()
    changed = [name for name, value in trained.items() if not torch.equal(value, untrained[name])]
    assert changed, "no weight moved: the classifier did not train"
