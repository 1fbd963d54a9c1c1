"""Where image data lives on this machine, decided once for ``main.py`` and the dashboard alike.

A dataset is read from its default folder (:func:`flows.data.default_data_dir`), or from the system's
copy (Debian's ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist``) when only that one
holds the files. With both splits present a run trains on the training split and is evaluated on the
test split; with only the test split (as on machines that keep just MNIST's t10k files) it trains on
the first 9,000 test images and is evaluated on the last :data:`HOLDOUT_IMAGES`, held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .mnist import dataset_info, default_data_dir, find_file

#: Images held out for testing when a machine holds only the 10,000 test images (t10k files).
HOLDOUT_IMAGES = 1000
#: Folders where Linux distributions install datasets (Debian's dataset-fashion-mnist); tried second.
SYSTEM_DATA_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
DISPLAY_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def split_present(data_dir: str | Path, dataset: str, split: str) -> bool:
    """True when both IDX files of ``split`` (images and labels) are in ``data_dir``, gzipped or not."""
    files = dataset_info(dataset).files_for(split)
    return all(find_file(Path(data_dir), f.name) is not None for f in files)


def image_data_dir(dataset: str) -> Path:
    """The folder to read ``dataset`` from: its default folder, or the system's copy when only that
    one holds the test files."""
    folder = default_data_dir(dataset)
    system = SYSTEM_DATA_DIRS.get(dataset)
    if not split_present(folder, dataset, "test") and system and split_present(system, dataset, "test"):
        return system
    return folder


@dataclass(frozen=True)
class DataPlan:
    """How a run gets its images: the folder, the holdout, a note for people, or why it cannot train."""

    folder: Path
    holdout: int  # 0: train split / test split; N: last N test images held out
    note: str | None
    problem: str | None  # None when the run can train


def plan_image_data(dataset: str, data_dir: str | Path | None = None, holdout: int = 0) -> DataPlan:
    """The train/test split of an image dataset from what is on disk (``data_dir`` or
    :func:`image_data_dir`). A ``holdout`` > 0 is kept as asked; 0 means "choose from the files"."""
    folder = Path(data_dir) if data_dir else image_data_dir(dataset)
    has_train = split_present(folder, dataset, "train")
    has_test = split_present(folder, dataset, "test")
    name = DISPLAY_NAMES.get(dataset, dataset)
    if has_test and holdout:
        note = f"{name}: the test split of {folder} only, its last {holdout:,} images held out for testing."
        return DataPlan(folder, holdout, note, None)
    if has_train and has_test:
        note = f"{name}: 60,000 training images, evaluated on the 10,000 test images."
        return DataPlan(folder, 0, note, None)
    if has_test:
        note = (
            f"Only {name}'s 10,000 test images are in {folder}: training on the first "
            f"{10_000 - HOLDOUT_IMAGES:,} and evaluating on the last {HOLDOUT_IMAGES:,}, held out."
        )
        return DataPlan(folder, HOLDOUT_IMAGES, note, None)
    problem = (
        f"{name} is not in {folder}. Download it on the Home page (or run "
        f"`python scripts/download_mnist.py --dataset {dataset}`), or pick a 2D toy dataset."
    )
    return DataPlan(folder, 0, None, problem)
