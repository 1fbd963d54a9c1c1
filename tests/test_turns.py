"""The playground's fair CPU gate: at most ``slots`` at a time, first come first served, and loops
sharing it take strictly alternating turns."""

from __future__ import annotations

import threading
import time

import pytest

from dashboard.services.loop import BackgroundLoop
from dashboard.services.turns import Seats, Turns, default_seats, default_slots

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


def test_a_stop_ends_the_wait_for_a_turn_at_once() -> None:
    turns = Turns(1)
    ran = threading.Event()
    loop = BackgroundLoop(lambda: ran.set() or True, "waiting", turns=turns)
    with turns.turn():  # another session holds the only slot for as long as it likes
        loop.start()
        wait_until(lambda: turns.waiting == 1)
        loop.request_stop()
        loop.join(timeout=5)
        assert not loop.running, "the stopped loop still waits for a turn"
        assert turns.waiting == 0, "the abandoned wait is still in the queue"
    assert not ran.is_set()
    with turns.turn() as granted:  # the gate still works for the next one
        assert granted


class Clock:
    """A settable clock for Seats (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_seats_cap_players_and_show_each_waiter_its_place_first_come_first_served() -> None:
    seats = Seats(2, clock=Clock())
    assert [seats.ask(name) for name in "abcde"] == [0, 0, 1, 2, 3]
    assert seats.ask("d") == 2 and seats.ask("a") == 0  # asking again keeps one's place
    seats.leave("a")  # a pauses: c, first in line, plays; everyone behind moves up
    assert [seats.ask(name) for name in "bcde"] == [0, 0, 1, 2]
    assert seats.ask("a") == 3  # playing again means the back of the line
    assert (seats.playing, seats.waiting) == (2, 3)


def test_a_seat_is_held_for_one_turn_while_others_wait_so_nobody_starves() -> None:
    clock = Clock()
    seats = Seats(1, turn_s=60, timeout_s=1000, clock=clock)
    assert [seats.ask(name) for name in "abc"] == [0, 1, 2]
    played = []
    for _ in range(6):  # six turns of a minute each: every session plays twice, in order
        clock.now += 60
        places = {name: seats.ask(name) for name in "abc"}
        played.append(next(name for name, place in places.items() if place == 0))
    assert played == list("bcabca")
    alone = Seats(1, turn_s=60, clock=clock)
    alone.ask("solo")
    clock.now += 600
    assert alone.ask("solo") == 0  # nobody waits: the seat is kept


def test_a_closed_tab_loses_its_seat_and_its_place() -> None:
    clock = Clock()
    seats = Seats(1, timeout_s=10, clock=clock)
    assert [seats.ask(name) for name in "abc"] == [0, 1, 2]
    clock.now += 6
    assert seats.ask("c") == 2
    clock.now += 6  # a and b stopped asking 12 s ago: c plays
    assert seats.ask("c") == 0
    assert (seats.playing, seats.waiting) == (1, 0)


def test_seats_are_configurable_and_bad_values_say_what_to_do() -> None:
    assert default_seats(2, environ={}) == 2
    assert default_seats(8, environ={"FLOWLAB_PLAYGROUND_SEATS": "3"}) == 3
    with pytest.raises(ValueError, match="FLOWLAB_PLAYGROUND_SEATS must be a whole number"):
        default_seats(2, environ={"FLOWLAB_PLAYGROUND_SEATS": "two"})
    with pytest.raises(ValueError, match="at least one seat"):
        Seats(0)


def test_a_whole_run_in_one_work_call_takes_turns_step_by_step_and_holds_none_while_paused() -> None:
    turns = Turns(1)
    counts = {"run": 0, "chunks": 0}
    loops: list[BackgroundLoop] = []

    def whole_run() -> bool:  # the run manager's shape: one call of work, a pause point per step
        while not loops[0].stop_requested:
            counts["run"] += 1
            time.sleep(0.002)
            loops[0].pause_point()
        return False

    def chunk() -> bool:  # a playground's shape: a chunk per call
        counts["chunks"] += 1
        time.sleep(0.002)
        return True

    loops.extend(
        [BackgroundLoop(whole_run, "run", turns=turns), BackgroundLoop(chunk, "playground", turns=turns)]
    )
    for loop in loops:
        loop.start()
    wait_until(lambda: min(counts.values()) >= 50, "both loops to progress")
    assert abs(counts["run"] - counts["chunks"]) <= 3, counts  # alternating turns
    loops[0].pause()
    wait_until(lambda: turns.waiting == 0, "the paused run to leave the queue")
    paused_at = counts["run"]
    chunks = counts["chunks"]
    wait_until(lambda: counts["chunks"] >= chunks + 50, "the playground to train alone")
    assert counts["run"] <= paused_at + 1
    for loop in loops:
        loop.stop()
    assert turns.busy == 0 and turns.waiting == 0
