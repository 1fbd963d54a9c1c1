"""What one transfer needs: a sink that checks the decompressed IDX content as it streams, one-line
descriptions of network failures, and urllib3's Retry reporting each retry (see download.py)."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import requests
from urllib3.util.retry import Retry

from .idx import GZIP_MAGIC
from .mnist import IdxFile


class MirrorError(Exception):
    """One attempt at one mirror failed; ``transient`` failures are worth retrying here (a body cut
    short; failures before the body were already retried by :class:`LoggedRetry`)."""

    def __init__(self, cause: str, transient: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.transient = transient


class DiskError(Exception):
    """Writing into the data folder failed (disk full, permissions): no mirror can fix that."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def file_is_verified(path: Path, file: IdxFile) -> bool:
    """True if ``path`` holds exactly the official decompressed content of ``file`` (length, then md5)."""
    try:
        if path.stat().st_size != file.size:
            return False
        md5 = hashlib.md5()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                md5.update(chunk)
    except OSError:
        return False
    return md5.hexdigest() == file.md5


class VerifyingSink:
    """Writes a stream of gzip (or plain IDX) bytes to ``out`` as decompressed IDX, hashing as it goes.

    ``finish()`` raises :class:`MirrorError` unless the content is exactly the official file.
    """

    def __init__(self, out: BinaryIO, file: IdxFile, content_type: str = "") -> None:
        self._out = out
        self._file = file
        self._content_type = content_type.lower()
        self._md5 = hashlib.md5()
        self._head = b""
        self._gzip: bool | None = None  # None until the first bytes say which
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self.length = 0

    def write(self, data: bytes) -> None:
        if self._gzip is None:
            self._head += data
            if len(self._head) < 4:
                return
            data, self._head = self._head, b""
            self._gzip = self._detect(data)
        if self._gzip:
            self._inflate(data)
        else:
            self._emit(data)

    def _detect(self, head: bytes) -> bool:
        """True for gzip, False for a plain IDX file; a clear failure for anything else."""
        if head.startswith(GZIP_MAGIC):
            return True
        if head.startswith(b"\x00\x00\x08"):
            return False
        if "html" in self._content_type or head.lstrip()[:1] == b"<":
            raise MirrorError(
                "got an HTML page instead of gzip data (the URL points at a web page, "
                "e.g. an error or login page, not at the file)",
                transient=False,
            )
        raise MirrorError(f"not gzip data (starts with bytes {head[:4].hex()})", transient=False)

    def _inflate(self, data: bytes) -> None:
        while data:
            if self._inflater.eof:  # another gzip member follows
                if not data.strip(b"\x00"):
                    return  # zero padding after the last member
                self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                self._emit(self._inflater.decompress(data))
            except zlib.error as error:
                raise MirrorError(f"corrupt gzip data ({error})", transient=False) from error
            data = self._inflater.unused_data

    def _emit(self, data: bytes) -> None:
        self.length += len(data)
        if self.length > self._file.size:
            raise MirrorError(
                f"wrong file: more than the official {self._file.size} bytes once decompressed",
                transient=False,
            )
        self._md5.update(data)
        try:
            self._out.write(data)
        except OSError as error:
            raise DiskError(error) from error

    def finish(self) -> None:
        if self._gzip is None:
            raise MirrorError(f"response too short ({len(self._head)} bytes)", transient=True)
        if self._gzip and not self._inflater.eof:
            raise MirrorError("truncated gzip data: the stream stopped early", transient=True)
        if self.length != self._file.size:
            raise MirrorError(
                f"wrong file: {self.length} bytes once decompressed, the official file has {self._file.size}",
                transient=False,
            )
        if self._md5.hexdigest() != self._file.md5:
            raise MirrorError(
                f"checksum mismatch: md5 {self._md5.hexdigest()} of the decompressed file, "
                f"the official value is {self._file.md5} (the mirror serves a different or damaged file)",
                transient=False,
            )


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps (``__cause__``, ``__context__``, exception args)."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        stack.extend(a for a in current.args if isinstance(a, BaseException))


def describe_network_error(error: Exception, done: int, total: int | None, timeout: float) -> str:
    """One short phrase for a network failure, naming how far the transfer got."""
    received = f"after {done} of {total} bytes" if total is not None else f"after {done} bytes"
    names = {type(e).__name__ for e in _chain(error)}
    text = " ".join(str(e) for e in _chain(error)).lower()
    if isinstance(error, requests.ConnectTimeout) or "ConnectTimeoutError" in names:
        return f"could not connect within {timeout:g} s (no network, or the host is down)"
    if isinstance(error, requests.ReadTimeout) or "ReadTimeoutError" in names or "timed out" in text:
        return f"the server stalled: no data for {timeout:g} s {received}"
    if "ConnectionResetError" in names or "reset by peer" in text:
        return f"connection reset by the server {received}"
    if "IncompleteRead" in names or "incompleteread" in text:
        return f"truncated body: the connection closed {received}"
    if "ConnectionRefusedError" in names or "refused" in text:
        return "connection refused (nothing listens at that address, or no network)"
    if "NameResolutionError" in names or "name or service not known" in text or "resolve" in text:
        return "cannot resolve the host name (no network, or a wrong URL)"
    return f"network error {received}: {type(error).__name__}: {error}"


class LoggedRetry(Retry):
    """urllib3's Retry that reports each retry (cause, attempt, delay) through ``on_retry``."""

    def __init__(
        self, *args: Any, on_retry: Callable[[Retry, Any, Any], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.on_retry = on_retry

    def new(self, **kwargs: Any) -> Retry:
        retry = super().new(**kwargs)
        retry.on_retry = self.on_retry
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.on_retry is not None:
            self.on_retry(retry, response, error)
        return retry
