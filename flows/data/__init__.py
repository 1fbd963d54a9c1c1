"""Data for Flow Lab: MNIST / Fashion-MNIST loading and download, dequantization, 2D toy densities."""

from .download import DownloadError, download_mnist
from .idx import read_idx
from .mnist import DATASETS, SPLITS, default_data_dir, load_mnist
from .pixels import bits_per_dim, dequantize, random_batch, random_shift
from .toy import DEFAULT_NOISE, TOY_DATASETS, make_toy

__all__ = [
    "DATASETS",
    "DEFAULT_NOISE",
    "SPLITS",
    "TOY_DATASETS",
    "DownloadError",
    "bits_per_dim",
    "default_data_dir",
    "dequantize",
    "download_mnist",
    "load_mnist",
    "make_toy",
    "random_batch",
    "random_shift",
    "read_idx",
]
