"""Fair shares of the CPU for many sessions: a first-come, first-served gate around chunks of work.

A class on one server means several playgrounds training at once. Left to the OS and the GIL, threads
do not share evenly (two playing sessions measured 1,900 and 1,300 steps/min) and the page scripts that
draw the panels wait behind them. Every playground loop takes a :meth:`Turns.turn` for each chunk of
steps: at most ``slots`` chunks run at a time (all cores but one, so the page scripts keep a core), and
waiting chunks go in the order they asked. N sessions then train at 1/N of the gate's speed each, and
every session's panels keep refreshing.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """At most ``slots`` holders at a time; waiters are served in the order they arrived."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a turn gate needs at least one slot, got {slots}")
        self.slots = slots
        self._condition = threading.Condition()
        self._queue: deque[object] = deque()
        self._holders = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Holds one slot for the block, after everyone who asked earlier got theirs."""
        ticket = object()
        with self._condition:
            self._queue.append(ticket)
            while self._queue[0] is not ticket or self._holders >= self.slots:
                self._condition.wait()
            self._queue.popleft()
            self._holders += 1
            self._condition.notify_all()  # the next in line may take a free slot too
        try:
            yield
        finally:
            with self._condition:
                self._holders -= 1
                self._condition.notify_all()

    @property
    def waiting(self) -> int:
        """Chunks waiting for a slot right now."""
        with self._condition:
            return len(self._queue)

    @property
    def busy(self) -> int:
        """Slots held right now."""
        with self._condition:
            return self._holders


def default_slots(cpu_count: int | None = None) -> int:
    """All cores but one (at least one): the page scripts that draw the panels keep a core."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, cores - 1)


#: The gate every playground loop on this server shares.
PLAYGROUND_TURNS = Turns(default_slots())
