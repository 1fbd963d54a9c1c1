"""File and process helpers shared by run folders and downloads: atomic writes, fsync, process checks,
and positive numbers read from environment variables.

A file is written atomically as ``.<name>.<pid>.<random><suffix>`` beside its final name, fsynced and
renamed over it, then the folder is fsynced: a crash or a kill at any moment leaves the old file (or
none) under the final name, never a part. The pid in the temp name lets a later process tell a temp
file of a dead writer (stale, removed by :func:`remove_stale_temp_files`) from one still being written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
#: New files get 0o666 less the umask, like any file a program creates (0o644 under the usual 022).
NEW_FILE_MODE = 0o666


def positive_env_number(name: str, unit: str) -> float | None:
    """``$name`` as a positive finite number (None when unset or blank); ValueError naming the variable
    and ``unit`` (e.g. "seconds", "GiB") otherwise."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number of {unit}, got {text!r}")
    return value


def process_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this machine (ours included), also when another user owns it."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists but belongs to someone else
        return True
    return True


def fsync_folder(folder: str | Path) -> None:
    """Makes a rename inside ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def temp_path(path: Path, suffix: str = TEMP_SUFFIX) -> Path:
    """A fresh temp file name beside ``path``: ``.<name>.<pid>.<random><suffix>``."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"


@contextlib.contextmanager
def atomic_file(path: str | Path, suffix: str = TEMP_SUFFIX) -> Iterator[BinaryIO]:
    """A binary handle on a temp file beside ``path``; on success it is fsynced and renamed over ``path``.

    Any exception (KeyboardInterrupt included) removes the temp file and leaves ``path`` as it was.
    """
    path = Path(path)
    temp = temp_path(path, suffix)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temp, flags, NEW_FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as handle:
        handle.write(data)


def _writer_pid(temp: Path, suffix: str) -> int | None:
    """The pid in ``.<name>.<pid>.<random><suffix>``, or None for a name without one."""
    parts = temp.name[: -len(suffix)].split(".")
    return int(parts[-2]) if len(parts) >= 4 and parts[-2].isdigit() else None


def remove_stale_temp_files(folder: str | Path, name: str = "*", suffix: str = TEMP_SUFFIX) -> list[Path]:
    """Deletes the temp files of ``name`` (a glob) in ``folder`` whose writer is gone; returns them.

    A temp file of a live process (this one included) is kept: it may still be being written.
    """
    stale = []
    for temp in Path(folder).glob(f".{name}.*{suffix}"):
        pid = _writer_pid(temp, suffix)
        if pid is not None and process_alive(pid):
            continue
        with contextlib.suppress(OSError):
            temp.unlink()
            stale.append(temp)
    return stale
