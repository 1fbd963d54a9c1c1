"""The one place the dashboard sets torch's thread count: all cores but one for training and page
computations, one thread for tiny 2D models (the playground, the Home demo)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def training_threads(cpu_count: int | None = None) -> int:
    """Torch threads for training: all cores but one (at least one), so the server keeps a core."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, cores - 1)


def torch_ready() -> None:
    """Caps torch's threads at :func:`training_threads` for page computations too, as for training: an
    oversubscribed CPU slows every torch thread down (OpenMP threads wait for each other)."""
    if torch.get_num_threads() > training_threads():
        torch.set_num_threads(training_threads())


_thread_scopes = 0  # one_thread() blocks running now, in any thread
_threads_before = 0  # torch's thread count before the first of them
_thread_scope_lock = threading.Lock()
_thread_depth = threading.local()  # .value: one_thread() blocks open in this thread


@contextmanager
def one_thread() -> Iterator[None]:
    """Runs the block with one torch intra-op thread, then restores the count torch had before.

    The playground's batches are tiny: a second OpenMP thread only adds synchronisation, and when the
    cores are busy (other sessions, other processes) it can make a step 20 times slower. OpenMP keeps
    the count per thread, so each thread sets its own and restores it when its outermost block ends;
    "before" is the count when the first of several overlapping blocks (the page's and a background
    loop's) began, so no thread restores another's 1.
    """
    global _thread_scopes, _threads_before
    depth = getattr(_thread_depth, "value", 0)
    with _thread_scope_lock:
        if _thread_scopes == 0:
            _threads_before = torch.get_num_threads()
        _thread_scopes += 1
        restore_to = _threads_before
    _thread_depth.value = depth + 1
    torch.set_num_threads(1)
    try:
        yield
    finally:
        _thread_depth.value = depth
        with _thread_scope_lock:
            _thread_scopes -= 1
        if depth == 0:
            torch.set_num_threads(restore_to)
