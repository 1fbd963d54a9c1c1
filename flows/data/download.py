"""Verified, atomic download of MNIST / Fashion-MNIST from a list of mirrors.

Each file is fetched as ``<name>.gz`` from the first mirror that serves it, decompressed while it
streams, and checked against the md5 and length of the official *decompressed* IDX content, so any
faithful mirror is accepted, even one that re-compressed the files. Bytes go to a temp file in the
data folder (``.<name>.<pid>.<random>.part``, see :mod:`flows.infra`), which is fsynced and renamed
over the final name only once verified: no half-written file ever carries a final name. Transient
failures (connection errors, timeouts, truncated bodies, HTTP 5xx/429) are retried with exponential
backoff, then the next mirror is tried: urllib3's ``Retry`` behind requests retries what fails before
a response's body starts (connection errors, HTTP 5xx/429, honouring Retry-After); this module retries
only what urllib3 cannot, a body that breaks off midway. Files already present and verified cause no
network request.

A mirror is an ``http(s)://`` URL of a folder, a ``file://`` URL, or a plain folder path.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..infra import atomic_file, positive_env_number, remove_stale_temp_files
from .mnist import DatasetInfo, IdxFile, dataset_info
from .transfer import (
    DiskError,
    LoggedRetry,
    MirrorError,
    VerifyingSink,
    describe_network_error,
    file_is_verified,
)

TIMEOUT_ENV = "FLOWLAB_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 30.0  # seconds to connect, and seconds without data before a read gives up
DEADLINE_ENV = "FLOWLAB_DOWNLOAD_DEADLINE"
#: Seconds one attempt at one file may take in all, however steadily bytes trickle in (9.9 MB at 11 kB/s).
DEFAULT_DEADLINE = 900.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 1.0  # first retry waits this long, then 2x, 4x, ...
CHUNK_BYTES = 64 * 1024
#: Responses urllib3 retries (with backoff, honouring Retry-After): server errors and "too many requests".
RETRY_STATUSES = (429, 500, 502, 503, 504)
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


def _seconds_from_env(name: str, default: float) -> float:
    """``$name`` in seconds, else ``default``; ValueError unless a positive finite number."""
    value = positive_env_number(name, "seconds")
    return default if value is None else value


def timeout_from_env(default: float = DEFAULT_TIMEOUT) -> float:
    """``$FLOWLAB_DOWNLOAD_TIMEOUT`` in seconds, else ``default``; ValueError unless a positive number."""
    return _seconds_from_env(TIMEOUT_ENV, default)


def deadline_from_env(default: float = DEFAULT_DEADLINE) -> float:
    """``$FLOWLAB_DOWNLOAD_DEADLINE`` (seconds per file and attempt), else ``default``; ValueError if bad."""
    return _seconds_from_env(DEADLINE_ENV, default)


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
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.info = info
        self.data_dir = data_dir
        self.mirrors = mirrors
        self.progress = progress or (lambda name, done, total: None)
        self.log = log or (lambda message: None)
        self.timeout = timeout
        self.deadline = deadline
        self.retries = retries
        self.backoff = backoff
        self._session: requests.Session | None = None
        self._current: tuple[IdxFile, str] | None = None  # what the HTTP request in flight fetches

    @property
    def session(self) -> requests.Session:
        """Created on first use, so a run with every file present opens no connection at all."""
        if self._session is None:
            retry = LoggedRetry(
                total=self.retries,
                backoff_factor=self.backoff,
                status_forcelist=RETRY_STATUSES,
                allowed_methods=("GET",),
                raise_on_status=False,  # the last 5xx comes back as a response and is described below
                on_retry=self._log_retry,
            )
            self._session = requests.Session()
            self._session.headers["User-Agent"] = USER_AGENT
            for scheme in ("http://", "https://"):
                self._session.mount(scheme, HTTPAdapter(max_retries=retry))
        return self._session

    def _log_retry(self, retry: Retry, response: object, error: object) -> None:
        """One line per retry urllib3 makes: what failed, which retry, after how long."""
        file, mirror = self._current
        if error is None and response is not None:
            cause = f"HTTP {response.status} {response.reason or ''}".strip() + " (a server error)"
        else:
            cause = describe_network_error(error, 0, None, self.timeout)
        self.log(
            f"{file.name}: {mirror}: {cause}; retry {len(retry.history)} of {self.retries} "
            f"in {retry.get_backoff_time():g} s"
        )

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
            except MirrorError as failure:
                self.log(f"{file.name}: {local_gz} is not usable ({failure.cause}); trying the mirrors")
        failures = []
        for mirror in self.mirrors:
            try:
                self._fetch_from_mirror(file, mirror)
                self.log(f"{file.name}: downloaded from {mirror} and verified (md5 {file.md5})")
                return target
            except MirrorError as failure:
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
                    copy = functools.partial(self._copy_http, f"{mirror}{file.name}.gz", file, mirror)
                self._attempt(file, mirror, copy)
                return
            except MirrorError as failure:
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
        except DiskError as error:
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
        sink = VerifyingSink(out, file)
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
            raise MirrorError(f"cannot read {source} ({error.strerror or error})", transient=False) from error
        sink.finish()

    def _copy_http(self, url: str, file: IdxFile, mirror: str, out: BinaryIO) -> None:
        """Streams ``url`` through the verifying sink, mapping every network failure to a clear cause."""
        done, total, started = 0, None, False
        self._current = (file, mirror)
        try:
            with self.session.get(url, stream=True, timeout=(self.timeout, self.timeout)) as response:
                status = response.status_code
                if status != 200:
                    reason = f"HTTP {status} {response.reason or ''}".strip()
                    if status in RETRY_STATUSES:  # urllib3 has retried it already
                        raise MirrorError(f"{reason} (a server error)", transient=False)
                    hint = " (the file is not at that URL)" if status == 404 else ""
                    raise MirrorError(f"{reason} for {url}{hint}", transient=False)
                length = response.headers.get("Content-Length", "")
                encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                total = int(length) if length.isdigit() and not encoded else None
                sink = VerifyingSink(out, file, response.headers.get("Content-Type", ""))
                self.progress(file.name, 0, total)
                started = True
                give_up_at = time.monotonic() + self.deadline
                # read1 returns what one read of the socket brings, so a mirror trickling a byte at a time
                # (each read well inside the timeout) still meets the deadline check below.
                while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                    sink.write(chunk)
                    done += len(chunk)
                    self.progress(file.name, done, total)
                    if time.monotonic() > give_up_at:
                        of_total = f" of {total}" if total is not None else ""
                        raise MirrorError(
                            f"too slow: {done}{of_total} bytes in {self.deadline:g} s, the deadline per file "
                            f"(--deadline or {DEADLINE_ENV})",
                            transient=False,
                        )
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            cause = describe_network_error(error, done, total, self.timeout)
            raise MirrorError(cause, transient=started) from error  # before the body: retried by urllib3
        if total is not None and done < total:
            raise MirrorError(f"truncated body: received {done} of {total} bytes", transient=True)
        sink.finish()


def _find_local_source(folder: Path, file: IdxFile) -> Path:
    """``folder/<name>.gz`` or ``folder/<name>``; a failure naming both if neither exists."""
    for candidate in (folder / f"{file.name}.gz", folder / file.name):
        if candidate.is_file():
            return candidate
    raise MirrorError(f"neither {file.name}.gz nor {file.name} is in the folder {folder}", transient=False)


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
    deadline: float | None = None,
) -> list[Path]:
    """Downloads, unzips and verifies the IDX files of ``split`` ("train", "test" or "all") into ``data_dir``.

    ``data_dir`` defaults to :func:`flows.data.default_data_dir` (``$FLOWLAB_DATA_DIR`` or
    ``data/mnist``). ``mirrors`` defaults to ``$FLOWLAB_MNIST_MIRROR`` (comma-separated) or the
    built-in list. ``progress(file_name, done_bytes, total_bytes)`` is called as bytes arrive;
    ``log(message)`` receives one line per event (skip, retry, next mirror, done). ``timeout``
    (seconds to connect and without data) defaults to ``$FLOWLAB_DOWNLOAD_TIMEOUT`` or 30; ``deadline``
    (seconds one attempt at one file may take in all) to ``$FLOWLAB_DOWNLOAD_DEADLINE`` or 900.
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
    deadline = deadline_from_env() if deadline is None else deadline
    if not 0 < deadline < float("inf"):
        raise ValueError(f"deadline must be a positive number of seconds, got {deadline!r}")
    folder = Path(data_dir).expanduser() if data_dir is not None else info.default_dir()
    downloader = _Downloader(
        info,
        folder,
        resolve_mirrors(mirrors, dataset),
        progress,
        log,
        float(timeout),
        retries,
        backoff,
        float(deadline),
    )
    files = info.files_for(split)
    try:
        downloader.prepare_folder(files)
        return [downloader.fetch(file) for file in files]
    finally:
        downloader.close()
