"""scripts/measure_viewers.py's arithmetic: refresh rate, the longest wait and steps per minute."""

from __future__ import annotations

import importlib.util

import pytest

from tests.browser import REPO

spec = importlib.util.spec_from_file_location("measure_viewers", REPO / "scripts" / "measure_viewers.py")
measure_viewers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measure_viewers)


def test_a_steady_session_refreshes_twice_a_second() -> None:
    changes = [[0.5 * index, 10 * index] for index in range(1, 21)]  # 0.5 s apart, 10 steps each
    result = measure_viewers.summarise(changes, seconds=10.0)
    assert result["refresh_per_s"] == pytest.approx(2.0)
    assert result["longest_gap_s"] == pytest.approx(0.5)
    assert result["steps_per_min"] == pytest.approx(1200.0)


def test_a_stall_is_the_longest_wait_even_at_the_end_of_the_window() -> None:
    changes = [[1.0, 0], [1.5, 5], [2.0, 10]]
    assert measure_viewers.summarise(changes, seconds=10.0)["longest_gap_s"] == pytest.approx(8.0)
    stalled_inside = [[0.2, 0], [0.4, 2], [3.4, 4], [3.6, 6]]
    assert measure_viewers.summarise(stalled_inside, seconds=3.7)["longest_gap_s"] == pytest.approx(3.0)


def test_a_session_that_never_refreshes_waits_the_whole_window() -> None:
    result = measure_viewers.summarise([[0.1, 7]], seconds=30.0)
    assert result == {"refresh_per_s": 0.0, "longest_gap_s": 30.0, "steps_per_min": 0.0}
