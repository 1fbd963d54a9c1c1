"""Verified, atomic download of MNIST / Fashion-MNIST from a list of mirrors.

Each file is fetched as ``<name>.gz`` from the first mirror that serves it, decompressed while it
streams, and checked against the md5 and length of the official *decompressed* IDX content, so any
faithful mirror is accepted, even one that re-compressed the files. Bytes go to a temp file in the
data folder (``.<name>.<pid>.<random>.part``, see :mod:`flows.infra`), which is fsynced and renamed
over the final name only once verified: no half-written file ever carries a final name. Transient
failures (connection errors, timeouts, truncated bodies, HTTP 5xx/429) are retried with exponential
backoff, then the next mirror is tried. Files already present and verified cause no network request.

A mirror is an ``http(s)://`` URL of a folder, a ``file://`` URL, or a plain folder path.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import requests

from ..infra import atomic_file, remove_stale_temp_files
from .idx import GZIP_MAGIC
from .mnist import DatasetInfo, IdxFile, dataset_info

TIMEOUT_ENV = "FLOWLAB_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 30.0  # seconds to connect, and seconds without data before a read gives up
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 1.0  # first retry waits this long, then 2x, 4x, ...
CHUNK_BYTES = 64 * 1024
TEMP_SUFFIX = ".part"
USER_AGENT = "flowlab-download/0.1 (+https://github.com/; python-requests)"

#: ``progress(file_name, done_bytes, total_bytes)``; called with ``done_bytes=0`` when an attempt starts.
ProgressCallback = Callable[[str, int, "int | None"], None]
#: ``log(message)``: one human-readable line about what the downloader is doing.
LogCallback = Callable[[str], None]


class DownloadError(RuntimeError):
    """A file could not be obtained. ``str(error)`` is one line: file, mirror, cause and what to do."""

    def __init__(self, message: str, file_name: str, mirror: str | None = None) -> None:
        super().__init__(message)
        self.file_name = file_name
        self.mirror = mirror


class _MirrorError(Exception):
    """One attempt at one mirror failed; ``transient`` failures are worth retrying."""

    def __init__(self, cause: str, transient: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.transient = transient


class _DiskError(Exception):
    """Writing into the data folder failed (disk full, permissions): no mirror can fix that."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def timeout_from_env(default: float = DEFAULT_TIMEOUT) -> float:
    """``$FLOWLAB_DOWNLOAD_TIMEOUT`` in seconds, else ``default``; ValueError unless a positive number."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return value


def resolve_mirrors(mirrors: Sequence[str | os.PathLike[str]] | None, dataset: str = "mnist") -> list[str]:
    """The mirrors to try in order: ``mirrors`` if given, else the dataset's environment variable
    (``FLOWLAB_MNIST_MIRROR``, comma-separated), else the default list. URLs get a trailing slash."""
    info = dataset_info(dataset)
    if mirrors is None or len(mirrors) == 0:
        from_env = [m.strip() for m in os.environ.get(info.mirror_env, "").split(",") if m.strip()]
        mirrors = from_env or list(info.mirrors)
    resolved = []
    for mirror in mirrors:
        if isinstance(mirror, os.PathLike):
            mirror = os.fspath(mirror)
        if not isinstance(mirror, str) or not mirror.strip():
            raise ValueError(f"a mirror must be a non-empty URL or folder, got {mirror!r}")
        mirror = mirror.strip()
        scheme = urllib.parse.urlparse(mirror).scheme.lower()
        if scheme in ("http", "https"):
            mirror = mirror if mirror.endswith("/") else mirror + "/"
        elif len(scheme) > 1 and scheme != "file":
            raise ValueError(
                f"unsupported mirror {mirror!r}: use an http(s):// URL, a file:// URL or a folder path"
            )
        resolved.append(mirror)
    return resolved


def _local_folder(mirror: str) -> Path | None:
    """The folder of a ``file://`` or plain-path mirror; None for an HTTP mirror."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme.lower() in ("http", "https"):
        return None
    if parsed.scheme.lower() == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(mirror).expanduser()


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


class _VerifyingSink:
    """Writes a stream of gzip (or plain IDX) bytes to ``out`` as decompressed IDX, hashing as it goes.

    ``finish()`` raises :class:`_MirrorError` unless the content is exactly the official file.
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
            raise _MirrorError(
                "got an HTML page instead of gzip data (the URL points at a web page, "
                "e.g. an error or login page, not at the file)",
                transient=False,
            )
        raise _MirrorError(f"not gzip data (starts with bytes {head[:4].hex()})", transient=False)

    def _inflate(self, data: bytes) -> None:
        while data:
            if self._inflater.eof:  # another gzip member follows
                if not data.strip(b"\x00"):
                    return  # zero padding after the last member
                self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                self._emit(self._inflater.decompress(data))
            except zlib.error as error:
                raise _MirrorError(f"corrupt gzip data ({error})", transient=False) from error
            data = self._inflater.unused_data

    def _emit(self, data: bytes) -> None:
        self.length += len(data)
        if self.length > self._file.size:
            raise _MirrorError(
                f"wrong file: more than the official {self._file.size} bytes once decompressed",
                transient=False,
            )
        self._md5.update(data)
        try:
            self._out.write(data)
        except OSError as error:
            raise _DiskError(error) from error

    def finish(self) -> None:
        if self._gzip is None:
            raise _MirrorError(f"response too short ({len(self._head)} bytes)", transient=True)
        if self._gzip and not self._inflater.eof:
            raise _MirrorError("truncated gzip data: the stream stopped early", transient=True)
        if self.length != self._file.size:
            raise _MirrorError(
                f"wrong file: {self.length} bytes once decompressed, the official file has {self._file.size}",
                transient=False,
            )
        if self._md5.hexdigest() != self._file.md5:
            raise _MirrorError(
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


def _describe_network_error(
    error: requests.RequestException, done: int, total: int | None, timeout: float
) -> str:
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


class _Downloader:
    """Fetches the files of one dataset into ``data_dir``; one instance per :func:`download_mnist` call."""

    def __init__(
        self,
        info: DatasetInfo,
        data_dir: Path,
        mirrors: list[str],
        progress: ProgressCallback | None,
        log: LogCallback | None,
        timeout: float,
        retries: int,
        backoff: float,
    ) -> None:
        self.info = info
        self.data_dir = data_dir
        self.mirrors = mirrors
        self.progress = progress or (lambda name, done, total: None)
        self.log = log or (lambda message: None)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """Created on first use, so a run with every file present opens no connection at all."""
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["User-Agent"] = USER_AGENT
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def advice(self) -> str:
        return (
            f"check your network or the mirror, pass --mirror URL or set {self.info.mirror_env} "
            f"(a URL, file:// URL or folder), or copy the official files into {self.data_dir}"
        )

    # -- the data folder ------------------------------------------------------------------------------

    def prepare_folder(self, files: list[IdxFile]) -> None:
        """Creates the data folder, checks it is writable, removes temp files of dead earlier runs."""
        names = ", ".join(f.name for f in files)
        remedy = f"choose a writable folder with --data-dir or {self.info.folder_env}"
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(dir=self.data_dir, prefix=".flowlab-write-test-")
            os.close(handle)
            os.unlink(probe)
        except OSError as error:
            reason = error.strerror or str(error)
            raise DownloadError(
                f"cannot save {names}: the data folder {self.data_dir} is not writable ({reason}); {remedy}",
                files[0].name,
            ) from error
        for file in files:
            for stale in remove_stale_temp_files(self.data_dir, file.name, TEMP_SUFFIX):
                self.log(f"{file.name}: removed {stale.name}, left by an interrupted download")

    # -- one file -------------------------------------------------------------------------------------

    def fetch(self, file: IdxFile) -> Path:
        """Makes ``data_dir/<name>`` the verified decompressed file, downloading only if needed."""
        target = self.data_dir / file.name
        if target.exists():
            if file_is_verified(target, file):
                self.log(f"{file.name}: already present and verified, nothing to download")
                return target
            self.log(f"{file.name}: present but does not match the official checksum; fetching it again")
        local_gz = self.data_dir / f"{file.name}.gz"
        if local_gz.is_file():
            try:
                self._attempt(file, str(self.data_dir), functools.partial(self._copy_local, local_gz, file))
                self.log(f"{file.name}: unzipped and verified from {local_gz}")
                return target
            except _MirrorError as failure:
                self.log(f"{file.name}: {local_gz} is not usable ({failure.cause}); trying the mirrors")
        failures = []
        for mirror in self.mirrors:
            try:
                self._fetch_from_mirror(file, mirror)
                self.log(f"{file.name}: downloaded from {mirror} and verified (md5 {file.md5})")
                return target
            except _MirrorError as failure:
                failures.append(f"{mirror}: {failure.cause}")
                if mirror != self.mirrors[-1]:
                    self.log(f"{file.name}: {mirror} failed ({failure.cause}); trying the next mirror")
        raise DownloadError(
            f"could not download {file.name} from {'; '.join(failures)}. To fix: {self.advice()}",
            file.name,
            self.mirrors[-1],
        )

    def _fetch_from_mirror(self, file: IdxFile, mirror: str) -> None:
        """Tries ``mirror``, retrying transient failures with exponential backoff."""
        folder = _local_folder(mirror)
        for attempt in range(self.retries + 1):
            try:
                if folder is not None:
                    copy = functools.partial(self._copy_local, _find_local_source(folder, file), file)
                else:
                    copy = functools.partial(self._copy_http, f"{mirror}{file.name}.gz", file)
                self._attempt(file, mirror, copy)
                return
            except _MirrorError as failure:
                if not failure.transient or attempt == self.retries:
                    raise
                delay = self.backoff * 2**attempt
                self.log(
                    f"{file.name}: {mirror}: {failure.cause}; "
                    f"retry {attempt + 1} of {self.retries} in {delay:g} s"
                )
                time.sleep(delay)

    def _attempt(self, file: IdxFile, mirror: str, copy: Callable[[BinaryIO], None]) -> None:
        """Runs ``copy`` into a temp file, renamed to the final name once verified; cleans up otherwise."""
        try:
            with atomic_file(self.data_dir / file.name, suffix=TEMP_SUFFIX) as out:
                copy(out)
        except _DiskError as error:
            raise self._disk_error(file, mirror, error.error) from error
        except OSError as error:  # open, flush, fsync or rename
            raise self._disk_error(file, mirror, error) from error

    def _disk_error(self, file: IdxFile, mirror: str, error: OSError) -> DownloadError:
        return DownloadError(
            f"cannot write {file.name} into {self.data_dir} ({error.strerror or error}); free some disk "
            f"space or choose a writable folder with --data-dir or {self.info.folder_env}",
            file.name,
            mirror,
        )

    def _copy_local(self, source: Path, file: IdxFile, out: BinaryIO) -> None:
        """Streams a local ``.gz`` or plain IDX file through the verifying sink."""
        sink = _VerifyingSink(out, file)
        try:
            total = source.stat().st_size
            self.progress(file.name, 0, total)
            done = 0
            with source.open("rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
                    sink.write(chunk)
                    done += len(chunk)
                    self.progress(file.name, done, total)
        except OSError as error:
            raise _MirrorError(
                f"cannot read {source} ({error.strerror or error})", transient=False
            ) from error
        sink.finish()

    def _copy_http(self, url: str, file: IdxFile, out: BinaryIO) -> None:
        """Streams ``url`` through the verifying sink, mapping every network failure to a clear cause."""
        done, total = 0, None
        try:
            with self.session.get(url, stream=True, timeout=(self.timeout, self.timeout)) as response:
                status = response.status_code
                if status != 200:
                    reason = f"HTTP {status} {response.reason or ''}".strip()
                    if status >= 500 or status == 429:
                        raise _MirrorError(f"{reason} (a server error)", transient=True)
                    hint = " (the file is not at that URL)" if status == 404 else ""
                    raise _MirrorError(f"{reason} for {url}{hint}", transient=False)
                length = response.headers.get("Content-Length", "")
                encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                total = int(length) if length.isdigit() and not encoded else None
                sink = _VerifyingSink(out, file, response.headers.get("Content-Type", ""))
                self.progress(file.name, 0, total)
                for chunk in response.iter_content(CHUNK_BYTES):
                    sink.write(chunk)
                    done += len(chunk)
                    self.progress(file.name, done, total)
        except requests.RequestException as error:
            cause = _describe_network_error(error, done, total, self.timeout)
            raise _MirrorError(cause, transient=True) from error
        if total is not None and done < total:
            raise _MirrorError(f"truncated body: received {done} of {total} bytes", transient=True)
        sink.finish()


def _find_local_source(folder: Path, file: IdxFile) -> Path:
    """``folder/<name>.gz`` or ``folder/<name>``; a failure naming both if neither exists."""
    for candidate in (folder / f"{file.name}.gz", folder / file.name):
        if candidate.is_file():
            return candidate
    raise _MirrorError(f"neither {file.name}.gz nor {file.name} is in the folder {folder}", transient=False)


def download_mnist(
    data_dir: str | Path | None = None,
    split: str = "all",
    dataset: str = "mnist",
    mirrors: Sequence[str | os.PathLike[str]] | None = None,
    progress: ProgressCallback | None = None,
    *,
    log: LogCallback | None = None,
    timeout: float | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
) -> list[Path]:
    """Downloads, unzips and verifies the IDX files of ``split`` ("train", "test" or "all") into ``data_dir``.

    ``data_dir`` defaults to :func:`flows.data.default_data_dir` (``$FLOWLAB_DATA_DIR`` or
    ``data/mnist``). ``mirrors`` defaults to ``$FLOWLAB_MNIST_MIRROR`` (comma-separated) or the
    built-in list. ``progress(file_name, done_bytes, total_bytes)`` is called as bytes arrive;
    ``log(message)`` receives one line per event (skip, retry, next mirror, done). ``timeout``
    (seconds to connect and without data) defaults to ``$FLOWLAB_DOWNLOAD_TIMEOUT`` or 30.
    Returns the paths of the verified decompressed files. Raises :class:`DownloadError` (one line
    naming file, mirror, cause and remedy) when a file cannot be obtained, leaving no partial file.
    """
    info = dataset_info(dataset)
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be one of train, test, all, got {split!r}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    if not backoff >= 0:
        raise ValueError(f"backoff must be a non-negative number of seconds, got {backoff!r}")
    timeout = timeout_from_env() if timeout is None else timeout
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    folder = Path(data_dir).expanduser() if data_dir is not None else info.default_dir()
    downloader = _Downloader(
        info, folder, resolve_mirrors(mirrors, dataset), progress, log, float(timeout), retries, backoff
    )
    files = info.files_for(split)
    try:
        downloader.prepare_folder(files)
        return [downloader.fetch(file) for file in files]
    finally:
        downloader.close()
