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
from .scorer import SCORE_TEMPERATURE, SampleScorer, scorer_for

__all__ = [
    "RECOGNISED_PROBABILITY",
    "SCORE_TEMPERATURE",
    "Classifier",
    "Judge",
    "SampleScore",
    "SampleScorer",
    "frechet_distance",
    "judge_cached",
    "load_judge",
    "scorer_for",
]
