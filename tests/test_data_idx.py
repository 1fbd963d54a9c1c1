"""load_mnist and the IDX reader on the real MNIST test digits and Debian's Fashion-MNIST."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import pytest
import torch

from flows.data import load_mnist, read_idx

IMAGES, LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
OFFICIAL_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def decompressed_copy(mnist_dir: Path, folder: Path) -> Path:
    """The two test files, decompressed, in ``folder``."""
    folder.mkdir(exist_ok=True)
    for name in (IMAGES, LABELS):
        (folder / name).write_bytes(gzip.decompress((mnist_dir / f"{name}.gz").read_bytes()))
    return folder


def test_load_mnist_reads_the_real_test_digits(mnist_dir: Path) -> None:
    images, labels = load_mnist(mnist_dir, "test")
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == OFFICIAL_TEST_LABEL_COUNTS
    # Real digits: dark background, bright strokes, the full 0..255 range.
    assert int(images.min()) == 0 and int(images.max()) == 255
    assert float(images[:, 0, :].float().mean()) < 1 < float(images[:, 14, :].float().mean())


def test_decompressed_and_gz_files_give_the_same_tensors(mnist_dir: Path, tmp_path: Path) -> None:
    from_gz = load_mnist(mnist_dir, "test")
    from_plain = load_mnist(decompressed_copy(mnist_dir, tmp_path), "test")
    assert all(torch.equal(a, b) for a, b in zip(from_gz, from_plain, strict=True))


def test_only_the_test_split_is_needed_and_a_missing_split_says_how_to_get_it(mnist_dir: Path) -> None:
    load_mnist(mnist_dir, "test")
    with pytest.raises(FileNotFoundError) as caught:
        load_mnist(mnist_dir, "train")
    message = str(caught.value)
    assert "train-images-idx3-ubyte" in message and str(mnist_dir) in message
    assert "scripts/download_mnist.py" in message and "FLOWLAB_MNIST_MIRROR" in message


def test_a_truncated_gz_file_is_a_clear_error_naming_it(mnist_dir: Path, tmp_path: Path) -> None:
    shutil.copy(mnist_dir / f"{LABELS}.gz", tmp_path / f"{LABELS}.gz")
    body = (mnist_dir / f"{IMAGES}.gz").read_bytes()
    (tmp_path / f"{IMAGES}.gz").write_bytes(body[: len(body) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as caught:
        load_mnist(tmp_path, "test")
    assert str(tmp_path / f"{IMAGES}.gz") in str(caught.value)


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda data: data[: -784 * 3 - 5], "truncated or corrupt"),  # the last digits cut off
        (lambda data: data + b"\x00" * 784, "truncated or corrupt"),  # one digit too many
        (lambda data: b"<ht" + data[3:], "not an IDX file"),  # bad magic number
        (lambda data: data[:2] + b"\x0d" + data[3:], "IDX type 0x0d"),  # float data, not bytes
        (lambda data: data[:12] + struct.pack(">I", 27) + data[16:], "shape [10000, 28, 27]"),
        (lambda data: data[:10], "truncated IDX header"),
    ],
    ids=["truncated", "too-long", "magic", "type", "dims", "header"],
)
def test_a_corrupt_idx_file_is_a_clear_error_naming_it(
    damage, phrase: str, mnist_dir: Path, tmp_path: Path
) -> None:
    folder = decompressed_copy(mnist_dir, tmp_path)
    path = folder / IMAGES
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError) as caught:
        load_mnist(folder, "test")
    assert phrase in str(caught.value) and str(path) in str(caught.value)
    assert "download it again" in str(caught.value)


def test_images_and_labels_that_do_not_belong_together_are_refused(mnist_dir: Path, tmp_path: Path) -> None:
    folder = decompressed_copy(mnist_dir, tmp_path)
    labels = (folder / LABELS).read_bytes()
    (folder / LABELS).write_bytes(labels[:4] + struct.pack(">I", 5000) + labels[8 : 8 + 5000])
    with pytest.raises(ValueError, match=r"10000 images but .* 5000 labels"):
        load_mnist(folder, "test")


def test_labels_outside_0_to_9_are_refused(mnist_dir: Path, tmp_path: Path) -> None:
    folder = decompressed_copy(mnist_dir, tmp_path)
    labels = bytearray((folder / LABELS).read_bytes())
    labels[100] = 10
    (folder / LABELS).write_bytes(bytes(labels))
    with pytest.raises(ValueError, match=r"label 10, expected 0\.\.9"):
        load_mnist(folder, "test")


def test_read_idx_returns_uint8_with_the_header_shape(mnist_dir: Path) -> None:
    labels = read_idx(mnist_dir / f"{LABELS}.gz", [None])
    assert labels.dtype == torch.uint8 and labels.shape == (10_000,)


def test_bad_arguments_are_value_errors(mnist_dir: Path) -> None:
    with pytest.raises(ValueError, match="split must be one of train, test"):
        load_mnist(mnist_dir, "validation")
    with pytest.raises(ValueError, match="unknown dataset 'kmnist'"):
        load_mnist(mnist_dir, "test", dataset="kmnist")


def test_fashion_mnist_loads_through_the_same_path(fashion_mnist_dir: Path) -> None:
    images, labels = load_mnist(fashion_mnist_dir, "train", dataset="fashion-mnist")
    assert images.shape == (60_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == [6000] * 10  # balanced classes
    test_images, _ = load_mnist(fashion_mnist_dir, "test", dataset="fashion-mnist")
    assert test_images.shape == (10_000, 28, 28)
