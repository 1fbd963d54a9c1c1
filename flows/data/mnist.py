"""MNIST and Fashion-MNIST: file names, official checksums, mirrors, and :func:`load_mnist`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..paths import work_root
from .idx import read_idx

SPLITS = ("train", "test")
IMAGE_SIZE = 28
NUM_CLASSES = 10


@dataclass(frozen=True)
class IdxFile:
    """One decompressed IDX file: its name, split, official md5 and exact length in bytes."""

    name: str
    split: str
    md5: str
    size: int


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset in MNIST's layout: its four files, default mirrors and default folder."""

    name: str
    files: tuple[IdxFile, ...]
    mirrors: tuple[str, ...]
    folder_env: str  # environment variable naming the folder that holds the files
    mirror_env: str  # environment variable replacing the mirror list (comma-separated)

    def files_for(self, split: str) -> list[IdxFile]:
        """The files of ``split`` ("train", "test" or "all")."""
        return [f for f in self.files if split in ("all", f.split)]

    def default_dir(self) -> Path:
        """``$<folder_env>`` if set, else ``data/<name>`` in the repository (or the current folder, installed)."""
        return Path(os.environ.get(self.folder_env) or work_root() / "data" / self.name)


def _files(train_images: str, train_labels: str, test_images: str, test_labels: str) -> tuple[IdxFile, ...]:
    """The four files in MNIST's layout with the given md5s of their decompressed content."""
    return (
        IdxFile("train-images-idx3-ubyte", "train", train_images, 16 + 60_000 * 28 * 28),
        IdxFile("train-labels-idx1-ubyte", "train", train_labels, 8 + 60_000),
        IdxFile("t10k-images-idx3-ubyte", "test", test_images, 16 + 10_000 * 28 * 28),
        IdxFile("t10k-labels-idx1-ubyte", "test", test_labels, 8 + 10_000),
    )


# md5 of the *decompressed* IDX files, so a mirror that re-compressed them is still accepted.
# MNIST: the official values (LeCun, Cortes, Burges). Fashion-MNIST: the decompressed content of the
# official files (whose .gz md5s are 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...), identical in
# Debian's dataset-fashion-mnist.
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        files=_files(
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        folder_env="FLOWLAB_DATA_DIR",
        mirror_env="FLOWLAB_MNIST_MIRROR",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        files=_files(
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "9018921c3c673c538a1fc5bad174d6f9",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        folder_env="FLOWLAB_FASHION_MNIST_DIR",
        mirror_env="FLOWLAB_FASHION_MNIST_MIRROR",
    ),
}


def dataset_info(dataset: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``dataset``; ValueError listing the choices otherwise."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


def default_data_dir(dataset: str = "mnist") -> Path:
    """Where the downloader puts ``dataset`` by default.

    MNIST: ``$FLOWLAB_DATA_DIR``, else ``data/mnist`` in the repository. Fashion-MNIST:
    ``$FLOWLAB_FASHION_MNIST_DIR``, else ``data/fashion-mnist``.
    """
    return dataset_info(dataset).default_dir()


def find_file(root: Path, name: str) -> Path | None:
    """``root/name`` (decompressed) or else ``root/name.gz``; None if neither exists."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(root: str | Path, split: str = "train", dataset: str = "mnist") -> tuple[Tensor, Tensor]:
    """Loads one split of MNIST or Fashion-MNIST from the IDX files in ``root``.

    Returns ``(images, labels)``: uint8 ``[N, 28, 28]`` and int64 ``[N]``. The files may be
    decompressed or ``.gz``. Only the files of ``split`` need to be present.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    info = dataset_info(dataset)
    root = Path(root)
    images_file, labels_file = info.files_for(split)
    images_path, labels_path = find_file(root, images_file.name), find_file(root, labels_file.name)
    if images_path is None or labels_path is None:
        missing = images_file.name if images_path is None else labels_file.name
        raise FileNotFoundError(
            f"{dataset} {split} files not found in {root} (looked for {missing} or {missing}.gz); "
            f"get them with `python scripts/download_mnist.py --dataset {dataset} --split {split} "
            f"--data-dir {root}`, the dashboard's download button, or copy the IDX files there "
            f"({info.mirror_env} points the downloader at your own mirror)"
        )
    images = read_idx(images_path, [None, IMAGE_SIZE, IMAGE_SIZE])
    labels = read_idx(labels_path, [None])
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "the files do not belong together, download them again"
        )
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise ValueError(f"{labels_path} holds label {int(labels.max())}, expected 0..9; download it again")
    return images, labels.to(torch.int64)
