"""Training configuration: one dataclass, the single source of every setting.

Each field carries its help text (``metadata["help"]``), from which ``main.py`` generates its flags and
the dashboard its widget tooltips; presets (the playground's, the Train page's) are
``dataclasses.replace`` of it; :meth:`TrainConfig.validate` checks it in one place and raises a
:class:`ConfigError` naming the field; the fields marked ``resumable`` are the only ones a resumed run
may change. Saved with every run as JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .. import registry
from ..couplings import SPLITS
from ..data import default_data_dir
from ..data.toy import TOY_DATASETS
from ..image.multiscale import image_shape_problem
from ..nn import ACTIVATIONS
from ..priors import PRIORS

IMAGE_DATASETS = ("mnist", "fashion-mnist")
TOY_DATASET_NAMES = tuple(TOY_DATASETS)
DATASETS = IMAGE_DATASETS + TOY_DATASET_NAMES
#: "auto" is checkerboard for images (neighbouring pixels condition each other) and half for 2D points.
SPLIT_CHOICES = ("auto", *SPLITS)
SCHEDULES = ("cosine", "linear", "constant")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
IMAGE_SIZE = 28
IMAGE_DIMS = IMAGE_SIZE * IMAGE_SIZE
TOY_DIMS = 2
#: Points in a 2D toy's held-out test set.
TOY_TEST_POINTS = 5000
#: The largest --augment-shift: a digit moved further starts to leave the 28 x 28 frame.
MAX_AUGMENT_SHIFT = 4


class ConfigError(ValueError):
    """An invalid setting; ``field`` names the TrainConfig field (so a UI can mark its widget)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def choices(name: str) -> tuple[str, ...] | None:
    """The valid values of a field with a fixed set of names (read at call time: the registry grows)."""
    table: dict[str, Callable[[], tuple[str, ...]]] = {
        "model": registry.family_names,
        "dataset": lambda: DATASETS,
        "activation": lambda: tuple(ACTIVATIONS),
        "prior": lambda: tuple(PRIORS),
        "split": lambda: SPLIT_CHOICES,
        "schedule": lambda: SCHEDULES,
    }
    return table[name]() if name in table else None


def option(default: Any, help: str, **extra: Any) -> Any:
    """A config field with its help text; ``extra`` goes to the metadata (``flag``, ``resumable``).

    A list default is copied for each instance.
    """
    metadata = {"help": help, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class TrainConfig:
    """Every hyperparameter of a training run; :meth:`validate` checks them all with one-line errors."""

    # --- model ---
    model: str = option("realnvp", "flow family to train, a name from flows.registry")
    blocks: int = option(4, "blocks K of the seed's F = f0 o f1, so 2K coupling layers")
    hidden: list[int] = option([256, 256], "hidden widths of each conditioner MLP: 256 256 or 256,256")  # noqa: RUF009
    activation: str = option("relu", "activation of the hidden layers: relu, tanh, elu, softplus, ...")
    prior: str = option("gaussian", "the latent distribution: gaussian or logistic")
    split: str = option("auto", "coupling halves x, y: auto is checkerboard for images, half for 2D")
    logit_alpha: float = option(
        0.05, "images: alpha a of the last layer, which maps R^784 to pixels by (sigmoid(z) - a)/(1 - 2a)"
    )
    levels: int = option(
        2, "image flows: scales, each squeezing 2x2 pixels into channels; all but the last factor out half"
    )
    steps_per_level: int = option(4, "image flows: coupling steps per scale")
    hidden_channels: int = option(64, "image flows: channels of each convolutional conditioner")
    residual_blocks: int = option(
        1, "conv-realnvp: residual blocks in each conditioner (0: three conv layers)"
    )
    conditional: bool = option(
        False, "image flows: condition on the class label, so samples can be drawn for a chosen digit"
    )
    # --- data ---
    dataset: str = option("mnist", "data: mnist, fashion-mnist or a 2D toy (moons, rings, spiral, ...)")
    data_dir: str = option(
        "",
        "folder of the IDX files; empty: the dataset's default ($FLOWLAB_DATA_DIR or data/mnist for mnist, "
        "$FLOWLAB_FASHION_MNIST_DIR, data/fashion-mnist or Debian's copy for fashion-mnist)",
        resumable=True,
    )
    holdout: int = option(
        0,
        "0: train split / test split, or the last 1,000 test images held out when only the test split "
        "is on disk; N > 0: use only the test split, last N held out",
    )
    toy_points: int = option(20000, "2D toys: number of training points (the test set has 5,000)")
    toy_noise: float | None = option(None, "2D toys: jitter std (None: the toy's own)")
    # --- optimisation (AdamW on loss = -mean logProbability of a random batch) ---
    batch_size: int = option(64, "global batch (split evenly across torchrun processes)")
    steps: int = option(5000, "optimizer steps in total (a resumed run continues up to it)", resumable=True)
    lr: float = option(1e-3, "peak learning rate (AdamW)")
    warmup_steps: int = option(100, "linear learning-rate warmup from lr / warmup_steps over this many steps")
    schedule: str = option(
        "cosine", "after warmup: cosine or linear decay to lr * min_lr_fraction, or constant"
    )
    min_lr_fraction: float = option(0.05, "the learning rate at the last step, as a fraction of lr")
    weight_decay: float = option(0.0, "AdamW decoupled weight decay (0: plain Adam)")
    augment_shift: int = option(
        0,
        "images: move each training digit by a random offset of up to this many pixels in each direction, "
        "a regulariser for small data (0: off)",
    )
    adam_beta2: float = option(
        0.999, "AdamW's second-moment decay; 0.99 adapts faster to a sudden large gradient"
    )
    grad_clip: float = option(1000.0, "clip the global gradient norm to this value (0: no clipping)")
    seed: int = option(0, "seeds the initial weights, the batch order and the dequantization noise")
    minutes: float = option(
        0.0,
        "train for this many minutes of wall time, the learning-rate schedule laid over the elapsed time "
        "(0: train for --steps, which a budget replaces)",
        resumable=True,
    )
    ema_decay: float = option(
        0.0,
        "evaluate, sample and keep in checkpoints an exponential moving average of the weights with this "
        "decay (0: off; 0.999 averages about the last 1,000 steps)",
    )
    early_stop: int = option(
        0, "stop after this many evaluations without a new best test loss (0: never)", resumable=True
    )
    # --- hardware ---
    device: str = option("auto", "auto (cuda when available), cpu, cuda or cuda:N", resumable=True)
    amp: bool = option(False, "bfloat16 autocast for training, CUDA and CPU (log-dets and loss stay float32)")
    num_threads: int = option(
        0, "torch.set_num_threads (0: torch's default)", flag="--threads", resumable=True
    )
    # --- bookkeeping ---
    eval_every: int = option(500, "steps between test evaluations (0: only at the end)", resumable=True)
    eval_batch_size: int = option(1000, "batch size of the evaluation (no gradients)", resumable=True)
    checkpoint_every: int = option(
        500, "steps between checkpoints/last.pt (0: only at the end)", resumable=True
    )
    log_every: int = option(10, "steps between metrics.jsonl lines", resumable=True)
    sample_count: int = option(64, "digits in samples.png, drawn at each evaluation", resumable=True)
    tensorboard: bool = option(
        False,
        "also write TensorBoard events (loss, bits/dim, lr, images/s, sample grids) into the run folder: "
        "tensorboard --logdir runs",
        resumable=True,
    )
    score_samples: int = option(
        500,
        "images: samples (temperature 0.7) scored by the judge of flows.evaluation at each evaluation, "
        "written to metrics.jsonl (0: off; the judge trains once, under a minute, then is cached)",
        resumable=True,
    )
    # --- non-finite loss guard ---
    nan_lr_factor: float = option(0.5, "learning-rate multiplier after a NaN/inf loss")
    nan_retries: int = option(5, "NaN/inf losses tolerated before the run stops")

    @property
    def is_image(self) -> bool:
        """True for MNIST and Fashion-MNIST, False for the 2D toys."""
        return self.dataset in IMAGE_DATASETS

    @property
    def dims(self) -> int:
        """Coordinates per sample: 784 for images, 2 for the toys."""
        return IMAGE_DIMS if self.is_image else TOY_DIMS

    def resolved_split(self) -> str:
        """The coupling split to build: "auto" becomes "checkerboard" for images and "half" for 2D."""
        if self.split != "auto":
            return self.split
        return "checkerboard" if self.is_image else "half"

    def resolved_data_dir(self) -> Path:
        """The folder holding the dataset's IDX files."""
        return Path(self.data_dir) if self.data_dir else default_data_dir(self.dataset)

    @property
    def data_kind(self) -> str:
        """ "image" or "toy", the registry's word for what a flow family suits."""
        return "image" if self.is_image else "toy"

    def validate(self) -> TrainConfig:
        """Checks every field; raises :class:`ConfigError` (one line, ``.field`` set). Returns self."""
        problem = self._first_problem()
        if problem:
            raise ConfigError(*problem)
        return self

    def _first_problem(self) -> tuple[str, str] | None:
        """(field, message) of the first invalid field, or None."""
        for name in ("model", "dataset", "activation", "prior", "split", "schedule"):
            value, valid = getattr(self, name), choices(name)
            if value not in valid:
                return name, f"unknown {name} {value!r}; choose one of {', '.join(valid)}"
        family = registry.get_family(self.model)
        if not family.suits(self.data_kind):
            suited = ", ".join(registry.family_names(self.data_kind))
            return "model", (
                f"model {self.model!r} does not train on {self.data_kind} data such as {self.dataset}; "
                f"choose one of {suited}"
            )
        if not isinstance(self.hidden, (list, tuple)) or not self.hidden:
            return (
                "hidden",
                f"hidden must be a non-empty list of layer widths such as [256, 256], got {self.hidden!r}",
            )
        if not all(_is_int(width) and width >= 1 for width in self.hidden):
            return "hidden", f"hidden layer widths must be positive integers, got {list(self.hidden)}"
        positive_ints = (
            "blocks",
            "levels",
            "steps_per_level",
            "hidden_channels",
            "batch_size",
            "steps",
            "eval_batch_size",
            "log_every",
            "sample_count",
        )
        non_negative_ints = (
            "residual_blocks",
            "holdout",
            "warmup_steps",
            "seed",
            "num_threads",
            "eval_every",
            "checkpoint_every",
            "nan_retries",
            "early_stop",
            "score_samples",
        )
        for name in positive_ints + non_negative_ints:
            value = getattr(self, name)
            lowest = 1 if name in positive_ints else 0
            if not _is_int(value) or value < lowest:
                kind = "a positive" if lowest else "a non-negative"
                return name, f"{name} must be {kind} integer, got {value!r}"
        if not _is_int(self.augment_shift) or not 0 <= self.augment_shift <= MAX_AUGMENT_SHIFT:
            return "augment_shift", (
                f"augment_shift must be a whole number of pixels from 0 to {MAX_AUGMENT_SHIFT}, "
                f"got {self.augment_shift!r}"
            )
        if self.seed >= 2**63:
            return "seed", f"seed must be below 2**63, got {self.seed}"
        if not _is_number(self.lr) or self.lr <= 0:
            return "lr", f"lr (learning rate) must be a positive number, got {self.lr!r}"
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                return name, f"{name} must be a non-negative number, got {value!r}"
        if not _is_number(self.minutes) or self.minutes < 0:
            return (
                "minutes",
                f"minutes must be a non-negative number (0: train for --steps), got {self.minutes!r}",
            )
        ranges = {  # name: (low, high, low included, high included)
            "ema_decay": (0, 1, True, False),
            "adam_beta2": (0, 1, False, False),
            "min_lr_fraction": (0, 1, True, True),
            "nan_lr_factor": (0, 1, False, True),
            "logit_alpha": (0, 0.5, True, False),
        }
        for name, (low, high, low_in, high_in) in ranges.items():
            value = getattr(self, name)
            above = _is_number(value) and (value >= low if low_in else value > low)
            below = _is_number(value) and (value <= high if high_in else value < high)
            if not (above and below):
                interval = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
                return name, f"{name} must lie in {interval}, got {value!r}"
        for name in ("amp", "conditional"):
            if not isinstance(getattr(self, name), bool):
                return name, f"{name} must be true or false, got {getattr(self, name)!r}"
        if self.conditional and "conditional" not in family.options:
            conditional = ", ".join(f.name for f in registry.families() if "conditional" in f.options)
            return "conditional", (
                f"model {self.model!r} has no class-conditional form; for digits of a chosen class use "
                f"one of {conditional}"
            )
        if family.image_shaped and self.is_image:
            problem = image_shape_problem([1, IMAGE_SIZE, IMAGE_SIZE], self.levels)
            if problem:
                return "levels", problem
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            return "device", f"unknown device {self.device!r}; choose auto, cpu, cuda or cuda:N"
        if not isinstance(self.data_dir, str):
            return "data_dir", f"data_dir must be a folder path (a string), got {self.data_dir!r}"
        if self.is_image:
            return None
        # 2D toys.
        if self.split == "checkerboard":
            return (
                "split",
                "a checkerboard split needs images; for 2D points use split 'auto', 'half' or 'interleave'",
            )
        if self.holdout:
            return "holdout", "holdout applies to image datasets only; 2D toys draw their own test points"
        if self.augment_shift:
            return "augment_shift", "augment_shift moves images; 2D toys have no pixels to move (use 0)"
        if not _is_int(self.toy_points) or self.toy_points < 2:
            return "toy_points", f"toy_points must be an integer of at least 2, got {self.toy_points!r}"
        if self.toy_noise is not None and (not _is_number(self.toy_noise) or not 0 <= self.toy_noise <= 4):
            return (
                "toy_noise",
                f"toy_noise must be a number in [0, 4] (or null for the default), got {self.toy_noise!r}",
            )
        if self.batch_size > self.toy_points:
            return "batch_size", (
                f"batch_size {self.batch_size} is larger than the {self.toy_points} training points; "
                "lower batch_size or raise toy_points"
            )
        return None

    # --- fields as a table: help texts, flags, resume rules ----------------------------------------------

    @classmethod
    def help(cls, name: str) -> str:
        """The help text of field ``name``."""
        return _field(name).metadata["help"]

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line flag of field ``name``: ``--batch-size`` for batch_size (or its own)."""
        return _field(name).metadata.get("flag") or "--" + name.replace("_", "-")

    @classmethod
    def resumable_fields(cls) -> tuple[str, ...]:
        """The fields a resumed run may change; any other would break the exact continuation."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("resumable"))

    def resumed(self, changes: Mapping[str, Any], describe: Callable[[str], str] = str) -> TrainConfig:
        """This (saved) config with ``changes`` applied for resuming, validated.

        Raises :class:`ConfigError` naming the changed fields that may not change (each shown by
        ``describe``, e.g. :meth:`flag`). Changes equal to the saved value are fine.
        """
        resumable = self.resumable_fields()
        frozen = [n for n, v in changes.items() if n not in resumable and v != getattr(self, n)]
        if "minutes" in changes and bool(changes["minutes"]) != bool(self.minutes):
            frozen.append("minutes")  # a step count and a time budget lay the schedule differently
        if frozen:
            frozen.sort(key=[f.name for f in fields(self)].index)
            raise ConfigError(
                frozen[0],
                f"{', '.join(describe(n) for n in frozen)} cannot change when resuming (the run would no "
                "longer continue exactly); start a new run instead",
            )
        return replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Builds a config from :meth:`to_dict` output; missing fields take their defaults.

        Raises ValueError for unknown fields (a typo would otherwise be silently ignored). Does not
        validate; call :meth:`validate`.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a training config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown config field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        values = dict(data)
        if isinstance(values.get("hidden"), tuple):
            values["hidden"] = list(values["hidden"])
        return cls(**values)


def _field(name: str) -> Any:
    """The dataclass field ``name`` of TrainConfig; ValueError for an unknown name."""
    for item in fields(TrainConfig):
        if item.name == name:
            return item
    raise ValueError(f"TrainConfig has no field {name!r}")
