"""Training configuration: one dataclass, validated in one place, saved with every run as JSON."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..couplings import SPLITS
from ..data import default_data_dir
from ..data.toy import TOY_DATASETS
from ..nn import ACTIVATIONS
from ..priors import PRIORS

MODELS = ("realnvp", "nice")
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class TrainConfig:
    """Every hyperparameter of a training run; :meth:`validate` checks them all with one-line errors."""

    # --- model ---
    model: str = "realnvp"  # "realnvp" (affine couplings) or "nice" (additive couplings + final scaling)
    blocks: int = 4  # blocks K of the seed's F = f0 o f1, so 2K coupling layers
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # hidden widths of each conditioner MLP
    activation: str = "relu"  # activation of the hidden layers, a name from flows.nn.ACTIVATIONS
    prior: str = "gaussian"  # the latent distribution: "gaussian" or "logistic"
    split: str = "auto"  # halves x, y: "auto" (checkerboard for images, half for 2D), or a flows split
    logit_alpha: float = 0.05  # images: the last layer maps R^784 to [0, 1)^784 by (sigmoid(z) - a)/(1 - 2a)
    # --- data ---
    dataset: str = "mnist"  # "mnist", "fashion-mnist" or a 2D toy: moons, rings, checkerboard, ...
    data_dir: str = ""  # folder of the IDX files; "" is the dataset's default (flows.data.default_data_dir)
    holdout: int = 0  # 0: train on train, test on test; N > 0: test split only, last N held out for testing
    toy_points: int = 20000  # 2D toys: number of training points (the test set has TOY_TEST_POINTS)
    toy_noise: float | None = None  # 2D toys: jitter std; None is flows.data.toy.DEFAULT_NOISE[dataset]
    # --- optimisation (AdamW on loss = -mean logProbability of a random batch) ---
    batch_size: int = 64  # global batch: under torchrun it is split evenly across the processes
    steps: int = 5000  # optimizer steps in total (a resumed run continues up to this number)
    lr: float = 1e-3  # peak learning rate
    warmup_steps: int = 100  # linear warmup from lr / warmup_steps to lr over this many steps
    schedule: str = (
        "cosine"  # after warmup: "cosine" or "linear" decay to lr * min_lr_fraction, or "constant"
    )
    min_lr_fraction: float = 0.05  # the decayed learning rate at the last step, as a fraction of lr
    weight_decay: float = 0.0  # AdamW's decoupled weight decay (0: plain Adam)
    adam_beta2: float = 0.999  # AdamW's second-moment decay; 0.99 adapts faster to a sudden large gradient
    grad_clip: float = 1000.0  # clip the global gradient norm to this value (0: no clipping)
    seed: int = 0  # seeds the initial weights, the batch order and the dequantization noise
    # --- hardware ---
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda" or "cuda:N"
    amp: bool = False  # bfloat16 autocast for the training forward pass (CUDA and CPU); eval stays float32
    num_threads: int = 0  # torch.set_num_threads for CPU work (0: leave torch's default)
    # --- bookkeeping ---
    eval_every: int = 500  # test bits/dim over the whole test split every this many steps (0: at the end)
    eval_batch_size: int = 1000  # batch size of the evaluation (no gradients, so it can be large)
    checkpoint_every: int = 500  # write checkpoints/last.pt every this many steps (0: only at the end)
    log_every: int = 10  # append a line to metrics.jsonl every this many steps
    sample_count: int = 64  # samples drawn for samples.png at each evaluation
    tensorboard: bool = False  # also write TensorBoard events (curves, sample grids) into the run folder
    # --- non-finite loss guard ---
    nan_lr_factor: float = 0.5  # after a NaN/inf loss the learning rate is multiplied by this factor
    nan_retries: int = 5  # stop the run when the loss was not finite more than this many times

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

    def validate(self) -> TrainConfig:
        """Checks every field; raises ValueError with a one-line message naming the field. Returns self."""
        problem = self._first_problem()
        if problem:
            raise ValueError(problem)
        return self

    def _first_problem(self) -> str | None:
        choices = {
            "model": MODELS,
            "dataset": DATASETS,
            "activation": tuple(ACTIVATIONS),
            "prior": tuple(PRIORS),
            "split": SPLIT_CHOICES,
            "schedule": SCHEDULES,
        }
        for name, valid in choices.items():
            value = getattr(self, name)
            if value not in valid:
                return f"unknown {name} {value!r}; choose one of {', '.join(valid)}"
        if not isinstance(self.hidden, (list, tuple)) or not self.hidden:
            return f"hidden must be a non-empty list of layer widths such as [256, 256], got {self.hidden!r}"
        if not all(_is_int(width) and width >= 1 for width in self.hidden):
            return f"hidden layer widths must be positive integers, got {list(self.hidden)}"
        positive_ints = ("blocks", "batch_size", "steps", "eval_batch_size", "log_every", "sample_count")
        non_negative_ints = (
            "holdout",
            "warmup_steps",
            "seed",
            "num_threads",
            "eval_every",
            "checkpoint_every",
            "nan_retries",
        )
        for name in positive_ints + non_negative_ints:
            value = getattr(self, name)
            lowest = 1 if name in positive_ints else 0
            if not _is_int(value) or value < lowest:
                kind = "a positive" if lowest else "a non-negative"
                return f"{name} must be {kind} integer, got {value!r}"
        if self.seed >= 2**63:
            return f"seed must be below 2**63, got {self.seed}"
        if not _is_number(self.lr) or self.lr <= 0:
            return f"lr (learning rate) must be a positive number, got {self.lr!r}"
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                return f"{name} must be a non-negative number, got {value!r}"
        if not _is_number(self.adam_beta2) or not 0 < self.adam_beta2 < 1:
            return f"adam_beta2 must lie in (0, 1), got {self.adam_beta2!r}"
        if not _is_number(self.min_lr_fraction) or not 0 <= self.min_lr_fraction <= 1:
            return f"min_lr_fraction must lie in [0, 1], got {self.min_lr_fraction!r}"
        if not _is_number(self.nan_lr_factor) or not 0 < self.nan_lr_factor <= 1:
            return f"nan_lr_factor must lie in (0, 1], got {self.nan_lr_factor!r}"
        if not _is_number(self.logit_alpha) or not 0 <= self.logit_alpha < 0.5:
            return f"logit_alpha must lie in [0, 0.5), got {self.logit_alpha!r}"
        if not isinstance(self.amp, bool):
            return f"amp must be true or false, got {self.amp!r}"
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            return f"unknown device {self.device!r}; choose auto, cpu, cuda or cuda:N"
        if not isinstance(self.data_dir, str):
            return f"data_dir must be a folder path (a string), got {self.data_dir!r}"
        if self.is_image:
            return None
        # 2D toys.
        if self.split == "checkerboard":
            return "a checkerboard split needs images; for 2D points use split 'auto', 'half' or 'interleave'"
        if self.holdout:
            return "holdout applies to image datasets only; 2D toys draw their own test points"
        if not _is_int(self.toy_points) or self.toy_points < 2:
            return f"toy_points must be an integer of at least 2, got {self.toy_points!r}"
        if self.toy_noise is not None and (not _is_number(self.toy_noise) or not 0 <= self.toy_noise <= 4):
            return f"toy_noise must be a number in [0, 4] (or null for the default), got {self.toy_noise!r}"
        if self.batch_size > self.toy_points:
            return (
                f"batch_size {self.batch_size} is larger than the {self.toy_points} training points; "
                "lower batch_size or raise toy_points"
            )
        return None

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
