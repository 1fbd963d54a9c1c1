#!/usr/bin/env python
"""Download and unzip MNIST (or Fashion-MNIST), verified against the official checksums.

    python scripts/download_mnist.py                       # all four files into data/mnist
    python scripts/download_mnist.py --split test --data-dir /tmp/mnist
    python scripts/download_mnist.py --mirror file:///media/usb/mnist/   # offline copy (.gz or IDX)

Environment: FLOWLAB_DATA_DIR (default folder for MNIST), FLOWLAB_MNIST_MIRROR (comma-separated
mirrors replacing the built-in list), FLOWLAB_DOWNLOAD_TIMEOUT (seconds), and for Fashion-MNIST
FLOWLAB_FASHION_MNIST_DIR / FLOWLAB_FASHION_MNIST_MIRROR. Exit status: 0 when every file is verified,
1 when a file could not be obtained (one line on stderr says which, from where, why and what to do),
2 for bad arguments, 130 when interrupted. No partial file is ever left under a final name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm

from flows.data.download import (
    DEADLINE_ENV,
    DEFAULT_BACKOFF,
    DEFAULT_DEADLINE,
    DEFAULT_RETRIES,
    TIMEOUT_ENV,
    DownloadError,
    deadline_from_env,
    download_mnist,
    timeout_from_env,
)
from flows.data.mnist import DATASETS, default_data_dir


class ProgressBars:
    """One tqdm bar per file (bytes, rate, ETA) on stderr, fed by the library's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.file_name = ""

    def update(self, file_name: str, done_bytes: int, total_bytes: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is None or file_name != self.file_name:
            self.close()
            self.file_name = file_name
            self.bar = tqdm(total=total_bytes, desc=file_name, unit="B", unit_scale=True, unit_divisor=1024)
        elif done_bytes < self.bar.n:  # a retry or the next mirror starts this file again
            self.bar.reset(total=total_bytes)
        self.bar.update(done_bytes - self.bar.n)

    def log(self, message: str) -> None:
        """Prints a status line below the finished bar; the next progress call opens a new bar."""
        if self.enabled:
            self.close()
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Download, unzip and verify MNIST or Fashion-MNIST (IDX files, official md5 checksums).",
        epilog="Offline: copy the four .gz or IDX files into the data folder, or point --mirror at a folder.",
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist", help="default: mnist")
    parser.add_argument("--split", choices=["train", "test", "all"], default="all", help="default: all")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder for the decompressed IDX files (default: $FLOWLAB_DATA_DIR or data/mnist in the "
        "repository; for fashion-mnist $FLOWLAB_FASHION_MNIST_DIR or data/fashion-mnist)",
    )
    parser.add_argument(
        "--mirror",
        action="append",
        default=None,
        metavar="URL",
        help="mirror to try, in order (repeatable): an http(s):// URL of a folder, a file:// URL or a "
        "folder path; replaces $FLOWLAB_MNIST_MIRROR and the built-in list",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help=f"seconds to connect and without data before giving up (default: ${TIMEOUT_ENV} or 30)",
    )
    parser.add_argument(
        "--deadline",
        type=positive_float,
        default=None,
        help=f"seconds one file may take in all, however slowly it arrives (default: ${DEADLINE_ENV} or "
        f"{DEFAULT_DEADLINE:g})",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help=f"retries per mirror after a transient failure (default: {DEFAULT_RETRIES})",
    )
    parser.add_argument(
        "--backoff",
        type=float,
        default=DEFAULT_BACKOFF,
        help=f"seconds before the first retry, doubled each time (default: {DEFAULT_BACKOFF:g})",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    if args.retries < 0:
        parser.error("--retries must be 0 or more")
    if args.backoff < 0:
        parser.error("--backoff must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = args.data_dir if args.data_dir is not None else default_data_dir(args.dataset)
    bars = ProgressBars(enabled=not args.quiet)
    try:
        timeout = args.timeout if args.timeout is not None else timeout_from_env()
        paths = download_mnist(
            data_dir,
            split=args.split,
            dataset=args.dataset,
            mirrors=args.mirror,
            progress=bars.update,
            log=bars.log,
            timeout=timeout,
            retries=args.retries,
            backoff=args.backoff,
            deadline=args.deadline if args.deadline is not None else deadline_from_env(),
        )
    except DownloadError as error:
        bars.close()
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a bad environment variable or mirror
        bars.close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bars.close()
        print("interrupted: no partial file was kept; run the same command again to finish", file=sys.stderr)
        return 130
    bars.close()
    if not args.quiet:
        print(f"{len(paths)} {args.dataset} files verified in {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
