"""Evaluation beyond bits/dim: a small classifier that judges whether samples look like the data."""

from .judge import (
    RECOGNISED_PROBABILITY,
    Classifier,
    Judge,
    SampleScore,
    frechet_distance,
    judge_cached,
    load_judge,
)

__all__ = [
    "RECOGNISED_PROBABILITY",
    "Classifier",
    "Judge",
    "SampleScore",
    "frechet_distance",
    "judge_cached",
    "load_judge",
]
