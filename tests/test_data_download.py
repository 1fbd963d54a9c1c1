"""The MNIST downloader against a real HTTP server on 127.0.0.1 serving the real test files, with faults."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from flows.data import load_mnist
from flows.data.download import DownloadError, download_mnist, resolve_mirrors, timeout_from_env
from flows.data.mnist import DATASETS

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "download_mnist.py"
IMAGES, LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n"


def damage(gz_body: bytes) -> bytes:
    """A valid gzip of the same-length content with its last byte changed: only the checksum can tell."""
    content = bytearray(gzip.decompress(gz_body))
    content[-1] ^= 0xFF
    return gzip.compress(bytes(content), compresslevel=1)


class MirrorServer:
    """A loopback HTTP mirror of a folder of ``.gz`` files; the first path part picks a behaviour.

    ``/ok/<file>`` serves the file; ``/404/``, ``/html/``, ``/truncated/``, ``/wrong/`` (valid gzip,
    one byte changed), ``/reset/`` (TCP reset mid-body), ``/stall/`` (stops sending), ``/pause/``
    (sends half, then waits for ``release``), ``/trickle/`` (a byte every 0.1 s) and ``/flaky/`` (two 503s
    per file, then the file)
    inject faults. ``hits`` counts requests per path.
    """

    def __init__(self, source: Path) -> None:
        self.files = {p.name: p.read_bytes() for p in source.glob("*.gz")}
        self.damaged = {name: damage(body) for name, body in self.files.items()}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.release = threading.Event()  # lets stalled and paused handlers end
        self.paused = threading.Event()  # set once a /pause/ handler has sent half a file
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # clients hanging up is expected here
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, behaviour: str = "ok") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{behaviour}/"

    def hits_for(self, name: str) -> int:
        with self.lock:
            return sum(count for path, count in self.hits.items() if path.endswith(f"/{name}.gz"))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def send_file_headers(self, length: int, content_type: str = "application/gzip") -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def do_GET(self) -> None:
                with server.lock:
                    server.hits[self.path] += 1
                    hits = server.hits[self.path]
                _, behaviour, name = self.path.split("/", 2)
                body = server.files.get(name)
                if body is None or behaviour == "404":
                    self.send_error(404, "Not Found")
                elif behaviour == "html":
                    self.send_file_headers(len(HTML_PAGE), "text/html; charset=utf-8")
                    self.wfile.write(HTML_PAGE)
                elif behaviour == "flaky" and hits <= 2:
                    self.send_error(503, "Service Unavailable")
                elif behaviour == "wrong":
                    self.send_file_headers(len(server.damaged[name]))
                    self.wfile.write(server.damaged[name])
                elif behaviour == "trickle":  # one byte every 0.1 s: each read is quick, the whole is not
                    self.send_file_headers(len(body))
                    for byte in body[:600]:
                        if server.release.wait(0.1):
                            break
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    self.close_connection = True
                elif behaviour in ("truncated", "reset", "stall", "pause"):
                    self.send_file_headers(len(body))
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if behaviour == "reset":  # SO_LINGER 0: close() sends a TCP RST
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        self.connection.close()
                    elif behaviour == "pause":
                        server.paused.set()
                        server.release.wait(60)
                    elif behaviour == "stall":
                        server.release.wait(60)
                    self.close_connection = True  # "truncated": hang up before Content-Length bytes
                else:
                    self.send_file_headers(len(body))
                    self.wfile.write(body)

        return Handler

    def __enter__(self) -> MirrorServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(mnist_dir: Path) -> Iterator[MirrorServer]:
    with MirrorServer(mnist_dir) as mirror:
        yield mirror


@pytest.fixture(scope="module")
def cli() -> ModuleType:
    """scripts/download_mnist.py imported as a module, so its ``main(argv)`` runs in-process."""
    spec = importlib.util.spec_from_file_location("download_mnist_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _no_mirror_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own settings must not leak into these tests."""
    for name in (
        "FLOWLAB_MNIST_MIRROR",
        "FLOWLAB_DOWNLOAD_TIMEOUT",
        "FLOWLAB_DOWNLOAD_DEADLINE",
        "FLOWLAB_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def official_content(mnist_dir: Path, name: str) -> bytes:
    return gzip.decompress((mnist_dir / f"{name}.gz").read_bytes())


def assert_verified(data_dir: Path, mnist_dir: Path) -> None:
    """Exactly the two decompressed official test files, nothing else (no temp files)."""
    assert sorted(os.listdir(data_dir)) == [IMAGES, LABELS]
    for name in (IMAGES, LABELS):
        assert (data_dir / name).read_bytes() == official_content(mnist_dir, name)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_cli_downloads_unzips_and_verifies_the_test_split_end_to_end(
    server: MirrorServer, mnist_dir: Path, tmp_path: Path, cli: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "mnist"
    result = run_cli("--mirror", server.url(), "--split", "test", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert f"2 mnist files verified in {data_dir}" in result.stdout
    assert "B/s" in result.stderr  # the progress bar reports a rate
    assert_verified(data_dir, mnist_dir)
    images, labels = load_mnist(data_dir, "test")
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert server.hits_for(IMAGES) == 1 and server.hits_for(LABELS) == 1

    # A second run with verified files present makes no request at all.
    assert cli.main(["--mirror", server.url(), "--split", "test", "--data-dir", str(data_dir)]) == 0
    assert "already present and verified" in capsys.readouterr().err
    assert server.hits_for(IMAGES) == 1 and server.hits_for(LABELS) == 1


FAULTS = [
    # behaviour, words the error line must contain, transient (retried once)
    ("404", "HTTP 404", False),
    ("html", "HTML page instead of gzip", False),
    ("truncated", "truncated body", True),
    ("wrong", "checksum mismatch", False),
    ("reset", "connection reset", True),
    ("stall", "server stalled", True),
    ("trickle", "too slow", False),
]


@pytest.mark.parametrize(("behaviour", "cause", "transient"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_ends_in_one_clear_line_a_nonzero_exit_and_no_partial_file(
    behaviour: str,
    cause: str,
    transient: bool,
    server: MirrorServer,
    tmp_path: Path,
    cli: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWLAB_DOWNLOAD_TIMEOUT", "0.5")  # the stalled server is given up on quickly
    monkeypatch.setenv("FLOWLAB_DOWNLOAD_DEADLINE", "1.5")  # and the trickling one soon after
    data_dir = tmp_path / "mnist"
    mirror = server.url(behaviour)
    argv = [
        "--mirror",
        mirror,
        "--split",
        "test",
        "--data-dir",
        str(data_dir),
        "--retries",
        "1",
        "--backoff",
        "0",
    ]
    assert cli.main(argv) == 1
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    line = error_lines[0]
    assert IMAGES in line and mirror in line and cause in line
    assert "FLOWLAB_MNIST_MIRROR" in line and "--mirror" in line  # what to do
    assert os.listdir(data_dir) == []  # no partial file, no temp file
    assert server.hits_for(IMAGES) == (2 if transient else 1)  # transient causes are retried


def test_server_errors_are_retried_with_backoff_then_succeed(
    server: MirrorServer, mnist_dir: Path, tmp_path: Path, cli: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--mirror", server.url("flaky"), "--split", "test", "--data-dir", str(tmp_path)]
    assert cli.main([*argv, "--retries", "2", "--backoff", "0.01"]) == 0
    assert "HTTP 503 Service Unavailable (a server error); retry 1 of 2" in capsys.readouterr().err
    assert server.hits_for(IMAGES) == 3 and server.hits_for(LABELS) == 3
    assert_verified(tmp_path, mnist_dir)


def test_too_few_retries_for_a_flaky_server_fail_cleanly(
    server: MirrorServer, tmp_path: Path, cli: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--mirror", server.url("flaky"), "--split", "test", "--data-dir", str(tmp_path)]
    assert cli.main([*argv, "--retries", "1", "--backoff", "0"]) == 1
    assert "HTTP 503" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_the_next_mirror_is_tried_after_a_failing_one(
    server: MirrorServer, mnist_dir: Path, tmp_path: Path, cli: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--mirror", server.url("404"), "--mirror", server.url("ok"), "--split", "test"]
    assert cli.main([*argv, "--data-dir", str(tmp_path)]) == 0
    assert "trying the next mirror" in capsys.readouterr().err
    assert_verified(tmp_path, mnist_dir)


def test_all_mirrors_failing_are_named_in_the_error(server: MirrorServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        download_mnist(tmp_path, "test", mirrors=[server.url("404"), server.url("html")], retries=0)
    message = str(caught.value)
    assert "\n" not in message
    assert server.url("404") in message and "HTTP 404" in message
    assert server.url("html") in message and "HTML page" in message
    assert caught.value.file_name == IMAGES
    assert os.listdir(tmp_path) == []


def test_environment_mirrors_with_a_file_url_work_offline(
    server: MirrorServer, mnist_dir: Path, tmp_path: Path, cli: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWLAB_MNIST_MIRROR", f"{server.url('404')}, {mnist_dir.as_uri()}")
    assert resolve_mirrors(None) == [server.url("404"), mnist_dir.as_uri()]
    assert cli.main(["--split", "test", "--data-dir", str(tmp_path), "--quiet"]) == 0
    assert_verified(tmp_path, mnist_dir)
    assert server.hits_for(IMAGES) == 1  # the 404 mirror was asked once, then the file:// one served


def test_a_plain_folder_mirror_holding_decompressed_files_works(mnist_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my-copy"
    folder.mkdir()
    for name in (IMAGES, LABELS):
        (folder / name).write_bytes(official_content(mnist_dir, name))
    paths = download_mnist(tmp_path / "data", "test", mirrors=[str(folder)])
    assert [p.name for p in paths] == [IMAGES, LABELS]
    assert_verified(tmp_path / "data", mnist_dir)


def test_gz_files_already_in_the_data_dir_are_unzipped_without_network(
    server: MirrorServer, mnist_dir: Path, tmp_path: Path
) -> None:
    for name in (IMAGES, LABELS):
        shutil.copy(mnist_dir / f"{name}.gz", tmp_path / f"{name}.gz")
    download_mnist(tmp_path, "test", mirrors=[server.url("404")])
    assert server.hits_for(IMAGES) == 0 and server.hits_for(LABELS) == 0
    for name in (IMAGES, LABELS):
        assert (tmp_path / name).read_bytes() == official_content(mnist_dir, name)


def test_a_damaged_file_is_downloaded_again(server: MirrorServer, mnist_dir: Path, tmp_path: Path) -> None:
    download_mnist(tmp_path, "test", mirrors=[server.url()])
    damaged = bytearray((tmp_path / IMAGES).read_bytes())
    damaged[5000] ^= 0x01
    (tmp_path / IMAGES).write_bytes(bytes(damaged))
    logs: list[str] = []
    download_mnist(tmp_path, "test", mirrors=[server.url()], log=logs.append)
    assert any("does not match the official checksum" in line for line in logs)
    assert server.hits_for(IMAGES) == 2 and server.hits_for(LABELS) == 1
    assert_verified(tmp_path, mnist_dir)


def test_an_unwritable_data_dir_is_a_clear_error_before_any_request(
    server: MirrorServer, tmp_path: Path, cli: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data_dir = blocker / "mnist"  # tests run as root, so chmod would not stop writes; a file does
    assert cli.main(["--mirror", server.url(), "--split", "test", "--data-dir", str(data_dir)]) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("error:") and "\n" not in line
    assert IMAGES in line and str(data_dir) in line and "not writable" in line and "--data-dir" in line
    assert server.hits_for(IMAGES) == 0
    assert blocker.read_text() == "not a folder"


def test_progress_reports_bytes_up_to_the_total(
    server: MirrorServer, mnist_dir: Path, tmp_path: Path
) -> None:
    calls: list[tuple[str, int, int | None]] = []
    download_mnist(tmp_path, "test", mirrors=[server.url()], progress=lambda *call: calls.append(call))
    for name in (IMAGES, LABELS):
        size = (mnist_dir / f"{name}.gz").stat().st_size
        done = [d for n, d, total in calls if n == name and total == size]
        assert done[0] == 0 and done[-1] == size and done == sorted(done)
        assert len(done) == len([c for c in calls if c[0] == name])


def wait_for(condition: threading.Event, process: subprocess.Popen[str]) -> None:
    """Waits until ``condition`` is set, failing with the process's output if it exits first."""
    deadline = time.monotonic() + 60
    while not condition.wait(0.05):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the download never reached the paused server: {process.communicate()}")


def start_paused_download(server: MirrorServer, data_dir: Path) -> subprocess.Popen[str]:
    """Starts the CLI against ``/pause/`` and returns once half of the images file has arrived."""
    argv = ["--mirror", server.url("pause"), "--split", "test", "--data-dir", str(data_dir), "--quiet"]
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A job started in the background by a shell inherits SIGINT ignored, and Python then keeps it
        # ignored; restore the default so the child turns Ctrl-C into KeyboardInterrupt as in a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for(server.paused, process)
    deadline = time.monotonic() + 30
    while not list(data_dir.glob(f".{IMAGES}.*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.name.endswith(".part") for p in data_dir.iterdir()] == [True]  # only a temp file so far
    return process


def test_an_interrupted_download_leaves_no_partial_file(server: MirrorServer, tmp_path: Path) -> None:
    process = start_paused_download(server, tmp_path)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted: no partial file was kept" in stderr
    assert os.listdir(tmp_path) == []


def test_a_killed_download_run_again_ends_verified(
    server: MirrorServer, mnist_dir: Path, tmp_path: Path, cli: ModuleType
) -> None:
    process = start_paused_download(server, tmp_path)
    process.kill()  # no chance to clean up: its temp file stays behind
    process.wait(timeout=60)
    assert not (tmp_path / IMAGES).exists()
    assert cli.main(["--mirror", server.url(), "--split", "test", "--data-dir", str(tmp_path)]) == 0
    assert_verified(tmp_path, mnist_dir)  # the dead run's temp file was removed


def test_fashion_mnist_goes_through_the_same_verified_path(
    fashion_mnist_dir: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    paths = download_mnist(tmp_path / "fashion", "test", dataset="fashion-mnist", mirrors=[fashion_mnist_dir])
    for path in paths:
        expected = hashlib.md5(gzip.decompress((fashion_mnist_dir / f"{path.name}.gz").read_bytes()))
        assert hashlib.md5(path.read_bytes()).hexdigest() == expected.hexdigest()
    images, _ = load_mnist(tmp_path / "fashion", "test", dataset="fashion-mnist")
    assert images.shape == (10_000, 28, 28)
    # MNIST files are not Fashion-MNIST: the checksums tell them apart.
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_mnist(tmp_path / "wrong", "test", dataset="fashion-mnist", mirrors=[mnist_dir])
    assert os.listdir(tmp_path / "wrong") == []


def test_recorded_checksums_match_the_real_files(mnist_dir: Path, fashion_mnist_dir: Path) -> None:
    """The md5 and length tables agree with the real MNIST test files and all of Debian's Fashion-MNIST."""
    cases = [(DATASETS["mnist"], mnist_dir, "test"), (DATASETS["fashion-mnist"], fashion_mnist_dir, "all")]
    for info, folder, split in cases:
        for file in info.files_for(split):
            content = gzip.decompress((folder / f"{file.name}.gz").read_bytes())
            assert (len(content), hashlib.md5(content).hexdigest()) == (file.size, file.md5), file.name


def test_bad_settings_are_value_errors_and_exit_code_2(
    tmp_path: Path, cli: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="unsupported mirror"):
        resolve_mirrors(["ftp://example.org/mnist/"])
    with pytest.raises(ValueError, match="split must be one of"):
        download_mnist(tmp_path, "validation", mirrors=[str(tmp_path)])
    with pytest.raises(ValueError, match="unknown dataset"):
        download_mnist(tmp_path, "test", dataset="cifar10")
    monkeypatch.setenv("FLOWLAB_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FLOWLAB_DOWNLOAD_TIMEOUT must be a positive number"):
        timeout_from_env()
    assert cli.main(["--split", "test", "--data-dir", str(tmp_path)]) == 2
    assert "FLOWLAB_DOWNLOAD_TIMEOUT" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
