"""Training flows by the seed's recipe: config, factories, trainer, events, run folders, torchrun helpers.

No printing and no UI here: ``main.py`` and the dashboard both drive :class:`Trainer` and attach a
:class:`run_logger.RunLogger` to persist a run.
"""

from . import events, runs
from .config import (
    DATASETS,
    IMAGE_DATASETS,
    SCHEDULES,
    SPLIT_CHOICES,
    TOY_DATASET_NAMES,
    ConfigError,
    TrainConfig,
)
from .events import (
    CheckpointEvent,
    DoneEvent,
    EvalEvent,
    Event,
    FailEvent,
    NanEvent,
    OverfitEvent,
    StartEvent,
    StepEvent,
)
from .export import export_model, export_run, load_export
from .factory import build_model, check_datasets, load_datasets, load_labels, plan_data, preset_config
from .run_logger import RunLogger
from .runs import RunInfo, list_runs, load_run_model
from .trainer import NonFiniteLossError, Trainer

__all__ = [
    "DATASETS",
    "IMAGE_DATASETS",
    "SCHEDULES",
    "SPLIT_CHOICES",
    "TOY_DATASET_NAMES",
    "CheckpointEvent",
    "ConfigError",
    "DoneEvent",
    "EvalEvent",
    "Event",
    "FailEvent",
    "NanEvent",
    "NonFiniteLossError",
    "OverfitEvent",
    "RunInfo",
    "RunLogger",
    "StartEvent",
    "StepEvent",
    "TrainConfig",
    "Trainer",
    "build_model",
    "check_datasets",
    "events",
    "export_model",
    "export_run",
    "list_runs",
    "load_datasets",
    "load_export",
    "load_labels",
    "load_run_model",
    "plan_data",
    "preset_config",
    "runs",
]
