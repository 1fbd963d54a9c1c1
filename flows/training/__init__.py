"""Training NICE and RealNVP by the seed's recipe: config, trainer, run folders, torchrun helpers.

No printing and no UI here: ``main.py`` and the dashboard both drive :class:`Trainer`.
"""

from . import runs
from .config import DATASETS, IMAGE_DATASETS, MODELS, SCHEDULES, SPLIT_CHOICES, TOY_DATASET_NAMES, TrainConfig
from .export import export_model, export_run, load_export
from .runs import RunInfo, list_runs, load_run_model
from .trainer import NonFiniteLossError, Trainer, build_model, check_datasets, load_datasets

__all__ = [
    "DATASETS",
    "IMAGE_DATASETS",
    "MODELS",
    "SCHEDULES",
    "SPLIT_CHOICES",
    "TOY_DATASET_NAMES",
    "NonFiniteLossError",
    "RunInfo",
    "TrainConfig",
    "Trainer",
    "build_model",
    "check_datasets",
    "export_model",
    "export_run",
    "list_runs",
    "load_datasets",
    "load_export",
    "load_run_model",
    "runs",
]
