"""Sharing one server among many playgrounds: a cap on who plays, and fair turns for each chunk of work.

A class on one server means several playgrounds training at once. Left to the OS and the GIL, threads
do not share evenly (two playing sessions measured 1,900 and 1,300 steps/min) and the page scripts that
draw the panels wait behind them. Two gates keep it in hand:

- :class:`Seats`: at most ``seats`` sessions play at once; a session beyond them waits in a
  first-come, first-served line and sees its place ("2nd in line"). A seat is held for at most
  ``turn_s`` seconds while someone waits, then its session goes to the back of the line, so nobody
  waits for ever; a session that stops checking in (a closed tab) loses its place after ``timeout_s``.
- :class:`Turns`: every playground loop takes a :meth:`Turns.turn` for each chunk of steps, and a
  dashboard training run on the CPU one for each step: at most ``slots`` run at a time (all cores but
  one, so the page scripts keep a core), and waiters go in the order they asked; a stop request
  abandons the wait at once. Without this a Train run beside three playgrounds showed no progress.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Seconds between two checks of a stop request while a chunk waits for its turn.
CANCEL_POLL_S = 0.02


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
    def turn(self, cancel: threading.Event | None = None) -> Iterator[bool]:
        """Holds one slot for the block, after everyone who asked earlier got theirs.

        Yields True while holding the slot, or False without one when ``cancel`` was set while waiting
        (the block should then skip its work): a stop never waits behind other sessions' chunks.
        """
        ticket = object()
        with self._condition:
            self._queue.append(ticket)
            while self._queue[0] is not ticket or self._holders >= self.slots:
                if cancel is not None and cancel.is_set():
                    self._queue.remove(ticket)
                    self._condition.notify_all()  # the next in line may be first now
                    break
                self._condition.wait(CANCEL_POLL_S if cancel is not None else None)
            else:
                self._queue.popleft()
                self._holders += 1
                self._condition.notify_all()  # the next in line may take a free slot too
                ticket = None
        if ticket is not None:  # cancelled
            yield False
            return
        try:
            yield True
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


class Seats:
    """At most ``seats`` sessions play at once; the others wait in line, first come, first served.

    A session asks with :meth:`ask` on every refresh (that is also its heartbeat) and gets 0 when it may
    play, else its place in line (1 = next). :meth:`leave` gives the place up (Pause).

    Args:
        seats: sessions playing at once.
        turn_s: seconds a session keeps its seat while others wait; then it goes to the back of the line.
        timeout_s: a session that has not asked for this long loses its seat or place (a closed tab).
        clock: the time source, in seconds.
    """

    def __init__(
        self,
        seats: int,
        turn_s: float = 120.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if seats < 1:
            raise ValueError(f"a playground cap needs at least one seat, got {seats}")
        if not (turn_s > 0 and timeout_s > 0):
            raise ValueError(f"turn_s and timeout_s must be positive, got {turn_s} and {timeout_s}")
        self.seats, self.turn_s, self.timeout_s = seats, turn_s, timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seated: dict[str, float] = {}  # holder -> when it sat down
        self._line: list[str] = []  # waiting holders, first in line first
        self._seen: dict[str, float] = {}  # holder -> its last ask

    def ask(self, holder: str) -> int:
        """0 when ``holder`` may play now, else its place in line (1 = next); joins the line if new."""
        with self._lock:
            now = self._clock()
            self._seen[holder] = now
            if holder not in self._seated and holder not in self._line:
                self._line.append(holder)
            self._expire(now)
            self._rotate(now)
            self._fill(now)
            return 0 if holder in self._seated else self._line.index(holder) + 1

    def leave(self, holder: str) -> None:
        """Gives up ``holder``'s seat or place in line (no-op when it has none)."""
        with self._lock:
            self._drop(holder)
            self._fill(self._clock())

    @property
    def playing(self) -> int:
        """Sessions holding a seat right now (closed tabs drop out after ``timeout_s``)."""
        with self._lock:
            self._expire(self._clock())
            return len(self._seated)

    @property
    def waiting(self) -> int:
        """Sessions in line right now."""
        with self._lock:
            self._expire(self._clock())
            return len(self._line)

    # --- inside the lock ----------------------------------------------------------------------------------

    def _drop(self, holder: str) -> None:
        self._seated.pop(holder, None)
        self._seen.pop(holder, None)
        if holder in self._line:
            self._line.remove(holder)

    def _expire(self, now: float) -> None:
        for holder in [h for h, seen in self._seen.items() if now - seen >= self.timeout_s]:
            self._drop(holder)
        self._fill(now)

    def _rotate(self, now: float) -> None:
        """Seats whose turn is over go to the back of the line, longest seated first, one per waiter."""
        over = sorted((sat, h) for h, sat in self._seated.items() if now - sat >= self.turn_s)
        for _, holder in over[: len(self._line)]:
            del self._seated[holder]
            self._line.append(holder)

    def _fill(self, now: float) -> None:
        while self._line and len(self._seated) < self.seats:
            self._seated[self._line.pop(0)] = now


def default_slots(cpu_count: int | None = None) -> int:
    """All cores but one (at least one): the page scripts that draw the panels keep a core."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, cores - 1)


def default_seats(cpu_count: int | None = None, environ: dict[str, str] | None = None) -> int:
    """Playgrounds playing at once: ``FLOWLAB_PLAYGROUND_SEATS`` when set, else one per core.

    One per core is the measured cap (bench/VIEWERS.md): on 2 cores two playing sessions each refresh
    about once a second, three do not.
    """
    environ = os.environ if environ is None else environ
    value = environ.get("FLOWLAB_PLAYGROUND_SEATS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"FLOWLAB_PLAYGROUND_SEATS must be a whole number >= 1, got {value!r}")
        return int(value)
    return max(1, cpu_count if cpu_count is not None else (os.cpu_count() or 1))


#: The gate every playground loop and CPU training run on this server shares.
PLAYGROUND_TURNS = Turns(default_slots())
#: Who may play on this server; the others wait in line.
PLAYGROUND_SEATS = Seats(default_seats())
