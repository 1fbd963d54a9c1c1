"""The dashboard's one background-loop class and its one shutdown registry.

A :class:`BackgroundLoop` calls ``work()`` in a daemon thread, over and over, until ``work`` returns
False, :meth:`~BackgroundLoop.stop` is asked for, or (with a heartbeat) the page stops calling
:meth:`~BackgroundLoop.touch`. :meth:`~BackgroundLoop.pause` holds the thread at its next pause point
(between two calls, or inside ``work`` at :meth:`~BackgroundLoop.pause_point`) until
:meth:`~BackgroundLoop.resume` or a stop. The run manager's training threads (one call of ``work``
that trains a whole run) and the playground's (ten steps per call) are both such loops.

``work`` must never call Streamlit. An exception inside it ends the loop and is kept in
:attr:`~BackgroundLoop.error`.

At interpreter exit every registered loop is asked to stop at once, then each gets up to
:data:`SHUTDOWN_WAIT_S` (all together) to finish, so a training run writes its final checkpoint and
torch is never mid-operation when the interpreter goes (torch aborts then). Anything with
``request_stop()`` and ``join(timeout)`` may join the registry (:func:`stop_at_exit`): the run manager
does, so that queued runs, which have no thread yet, are marked stopped as well.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from dashboard.services.threads import one_thread
from dashboard.services.turns import Turns

#: Seconds a server shutdown waits, in all, for background threads to finish (final checkpoints).
SHUTDOWN_WAIT_S = 10.0


class Stoppable(Protocol):
    """What the shutdown registry needs: ask to stop without waiting, then wait at most ``timeout``."""

    def request_stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


class BackgroundLoop:
    """Calls ``work()`` in a daemon thread until it returns False, a stop, or the page's silence.

    Args:
        work: one chunk of work; returns True to be called again. Never calls Streamlit.
        name: the thread's name.
        heartbeat_timeout: seconds without :meth:`touch` after which the loop stops (None: never).
        single_thread: run ``work`` with one torch intra-op thread (``threads.one_thread``), for tiny
            models; False leaves the count to ``work`` (a trainer sets its own).
        turns: a gate shared with other loops (:mod:`dashboard.services.turns`): each call of ``work``
            waits for its fair turn, and a stop ends that wait at once. None: no gate.
    """

    def __init__(
        self,
        work: Callable[[], bool],
        name: str,
        heartbeat_timeout: float | None = None,
        single_thread: bool = True,
        turns: Turns | None = None,
    ) -> None:
        self.work, self.name = work, name
        self.turns = turns
        self.heartbeat_timeout = heartbeat_timeout
        self.single_thread = single_thread
        self.error: str | None = None
        self.heartbeat = time.monotonic()
        self._stop = threading.Event()
        self._may_run = threading.Event()  # cleared by pause()
        self._may_run.set()
        self._thread: threading.Thread | None = None
        self._holding: contextlib.AbstractContextManager[bool] | None = None  # the gate's turn held now
        stop_at_exit(self)

    # --- state ------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the thread is alive (working, paused or finishing after a stop request)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` or :meth:`request_stop` was called (until the next :meth:`start`)."""
        return self._stop.is_set()

    @property
    def pause_requested(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return not self._may_run.is_set()

    def _silent(self) -> bool:
        timeout = self.heartbeat_timeout
        return timeout is not None and time.monotonic() - self.heartbeat >= timeout

    # --- controls ---------------------------------------------------------------------------------------

    def touch(self) -> None:
        """The page is still watching: keep going for another ``heartbeat_timeout`` seconds."""
        self.heartbeat = time.monotonic()

    def start(self) -> None:
        """Starts the thread (no-op while it runs); clears an earlier stop request and pause."""
        if self.running:
            return
        self.touch()
        self._stop.clear()
        self._may_run.set()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Holds the thread at its next pause point until :meth:`resume` or a stop."""
        self._may_run.clear()

    def resume(self) -> None:
        """Lets a paused thread go on."""
        self._may_run.set()

    def request_stop(self) -> None:
        """Asks the loop to stop after its current chunk (or pause point) without waiting; wakes a pause."""
        self._stop.set()
        self._may_run.set()

    def join(self, timeout: float | None = None) -> None:
        """Waits at most ``timeout`` seconds (None: until done) for the thread to end."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def stop(self) -> None:
        """Asks the loop to stop and waits until it has (at most one chunk of work)."""
        self.request_stop()
        self.join()
        if not self.running:
            self._thread = None

    def pause_point(
        self, on_pause: Callable[[], None] | None = None, on_resume: Callable[[], None] | None = None
    ) -> None:
        """Inside ``work``: waits here while paused. ``on_pause`` runs before waiting, ``on_resume`` after
        a resume (not when a stop ended the wait).

        With a gate, a long ``work`` (a whole training run) gives its turn to whoever waits at each pause
        point and queues again, and holds no turn while paused.
        """
        if self._holding is not None and self.turns is not None and self.turns.waiting:
            self._give_turn()
            self._take_turn()
        if self._may_run.is_set():
            return
        self._give_turn()
        if on_pause is not None:
            on_pause()
        self._may_run.wait()
        if self.turns is not None and not self._stop.is_set():
            self._take_turn()
        if not self._stop.is_set() and on_resume is not None:
            on_resume()

    # --- the thread -------------------------------------------------------------------------------------

    def _take_turn(self) -> bool:
        """Waits for this loop's turn at the gate (True at once without one); False when a stop ended
        the wait."""
        if self.turns is None:
            return True
        turn = self.turns.turn(cancel=self._stop)
        if not turn.__enter__():
            turn.__exit__(None, None, None)
            return False
        self._holding = turn
        return True

    def _give_turn(self) -> None:
        """Gives the gate's turn back, if this loop holds one."""
        turn, self._holding = self._holding, None
        if turn is not None:
            turn.__exit__(None, None, None)

    def _loop(self) -> None:
        with one_thread() if self.single_thread else contextlib.nullcontext():
            while not self._stop.is_set() and not self._silent():
                try:
                    if not self._take_turn():  # a stop request ended the wait for a turn
                        return
                    try:
                        more = self.work()
                    finally:
                        self._give_turn()
                    if not more:
                        return
                except Exception as error:  # shown on the page, not a silent dead thread
                    self.error = f"training stopped: {type(error).__name__}: {error}"
                    return
                self.pause_point()


# --- shutdown ---------------------------------------------------------------------------------------------

#: Everything to stop at interpreter exit: every BackgroundLoop, and the run managers.
_AT_EXIT: weakref.WeakSet[Stoppable] = weakref.WeakSet()


def stop_at_exit(item: Stoppable) -> None:
    """Adds ``item`` to the things stopped (and waited for) at interpreter exit; held weakly."""
    _AT_EXIT.add(item)


def stop_everything(wait_s: float = SHUTDOWN_WAIT_S) -> None:
    """Asks every registered item to stop, then waits up to ``wait_s`` seconds in all for them."""
    items = list(_AT_EXIT)
    for item in items:
        item.request_stop()
    deadline = time.monotonic() + wait_s
    for item in items:
        item.join(max(0.0, deadline - time.monotonic()))


atexit.register(stop_everything)
