"""The playground's fair CPU gate: at most ``slots`` at a time, first come first served, and loops
sharing it take strictly alternating turns."""

from __future__ import annotations

import threading
import time

import pytest

from dashboard.services.loop import BackgroundLoop
from dashboard.services.turns import Turns, default_slots

from .polling import wait_until


def test_never_more_holders_than_slots() -> None:
    turns = Turns(2)
    inside, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(20):
            with turns.turn():
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2
    assert turns.busy == 0 and turns.waiting == 0


def test_waiters_are_served_in_the_order_they_arrived() -> None:
    turns = Turns(1)
    order: list[str] = []

    def take(name: str) -> None:
        with turns.turn():
            order.append(name)

    threads = []
    with turns.turn():  # hold the only slot while three queue up, one after the other
        for index, name in enumerate("CAB"):
            thread = threading.Thread(target=take, args=(name,))
            thread.start()
            threads.append(thread)
            wait_until(lambda count=index + 1: turns.waiting == count)
    for thread in threads:
        thread.join()
    assert order == ["C", "A", "B"]


def test_two_loops_on_one_slot_take_alternating_turns() -> None:
    turns = Turns(1)
    counts = {"first": 0, "second": 0}

    def chunk(name: str):
        def work() -> bool:
            counts[name] += 1
            time.sleep(0.002)  # a chunk of training steps
            return True

        return work

    loops = [BackgroundLoop(chunk(name), name, turns=turns) for name in counts]
    for loop in loops:
        loop.start()
    wait_until(lambda: min(counts.values()) >= 50)
    for loop in loops:
        loop.request_stop()
    for loop in loops:
        loop.join()
    assert abs(counts["first"] - counts["second"]) <= 2, counts


def test_a_gate_needs_a_slot_and_keeps_a_core_for_the_pages() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        Turns(0)
    assert default_slots(1) == 1
    assert default_slots(2) == 1
    assert default_slots(16) == 15
