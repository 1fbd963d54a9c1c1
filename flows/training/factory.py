"""From a :class:`TrainConfig` to a model, its loss, optimizer and data: the one place that reads the
family registry.

``main.py``, the dashboard's run manager, the Jacobian page and the playground all build through
:func:`build_model`; data are located by :func:`plan_data` (see :mod:`flows.data.location`) and read
by :func:`load_datasets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from .. import limits
from ..bijection import Logit
from ..data import load_mnist, make_toy
from ..data.location import DataPlan, plan_image_data
from ..data.mnist import default_data_dir
from ..models import Flow
from ..priors import PRIORS
from ..registry import get_family
from .config import IMAGE_DATASETS, IMAGE_DIMS, IMAGE_SIZE, TOY_DIMS, TOY_TEST_POINTS, TrainConfig


def build_model(config: TrainConfig) -> Flow:
    """The flow a config describes: its registered family with :class:`Logit` last for images (so
    densities are over pixel space), on ``[784]`` (``[1, 28, 28]`` for the image-shaped families such
    as Glow), or on ``[2]`` without it for the 2D toys.

    Raises :class:`flows.limits.MemoryLimitError` (a ValueError) before allocating anything when training
    it would need more memory than :func:`flows.limits.memory_limit_bytes`.
    """
    config.validate()
    check_memory(config)
    return _construct_model(config)


def estimate_memory(config: TrainConfig) -> limits.MemoryEstimate:
    """Memory of training ``config``'s model with its batch size, measured on the meta device."""
    config.validate()

    def loss(model: nn.Module) -> Tensor:  # one batch in [0, 1): pixels, or points (any values do)
        return -model.logProbability(torch.rand(config.batch_size, *_sample_shape(config))).mean()

    return limits.estimate_training_memory(lambda: _construct_model(config), loss)


def check_memory(config: TrainConfig) -> limits.MemoryEstimate:
    """The estimate of :func:`estimate_memory`; MemoryLimitError (one line) when it exceeds the limit."""
    estimate = estimate_memory(config)
    what = (
        f"{config.model} with hidden {list(config.hidden)}, {config.blocks} blocks, batch {config.batch_size}"
    )
    limits.check_fits(estimate, what, "lower hidden sizes, blocks or batch size")
    return estimate


def _sample_shape(config: TrainConfig) -> list[int]:
    family = get_family(config.model)
    return [1, IMAGE_SIZE, IMAGE_SIZE] if family.image_shaped and config.is_image else [config.dims]


def _construct_model(config: TrainConfig) -> Flow:
    family = get_family(config.model)
    prior = PRIORS[config.prior](_sample_shape(config))
    options = {name: getattr(config, name) for name in family.options}
    if "split" in options:
        options["split"] = config.resolved_split()
    model = family.build(prior, **options)
    if config.is_image:
        model.layers.append(Logit(config.logit_alpha))
    return model


def device_kind(device: str) -> str:
    """ "gpu" when ``device`` ("auto", "cpu", "cuda", "cuda:N") trains on a GPU here, else "cpu"."""
    if device == "cpu":
        return "cpu"
    return "gpu" if torch.cuda.is_available() else "cpu"


def preset_config(given: Mapping[str, Any]) -> TrainConfig:
    """A new run's config: the defaults, then its family's preset for the device (the CPU or the GPU
    one; see :attr:`flows.registry.FlowFamily.presets`), then the ``given`` fields. Not validated.

    Presets are chosen on the digits: a 2D toy starts from the defaults alone."""
    family = get_family(given.get("model", TrainConfig.model))
    preset = family.preset(device_kind(given.get("device", TrainConfig.device)))
    if given.get("dataset", TrainConfig.dataset) not in IMAGE_DATASETS:
        preset = {}
    return TrainConfig(**{**preset, **given})


def plan_data(config: TrainConfig) -> tuple[TrainConfig, DataPlan | None]:
    """The config with its image folder and holdout chosen from the files on disk, and the plan.

    2D toys need no plan (None). An explicit ``data_dir`` or ``holdout`` is kept. When the data are
    missing the config comes back unchanged with the plan's ``problem`` set, and :func:`load_datasets`
    raises the detailed FileNotFoundError.
    """
    if not config.is_image:
        return config, None
    plan = plan_image_data(config.dataset, config.data_dir or None, config.holdout)
    if plan.problem:
        return config, plan
    default = default_data_dir(config.dataset)
    data_dir = config.data_dir or ("" if plan.folder == default else str(plan.folder))
    return replace(config, holdout=plan.holdout, data_dir=data_dir), plan


def load_datasets(config: TrainConfig) -> tuple[Tensor, Tensor]:
    """The training and test data a config names: uint8 ``[N, 784]`` images or float32 ``[N, 2]`` points.

    With ``config.holdout = N > 0`` only the test split is read: its last N images are the test set and
    the others the training set (for machines holding only MNIST's t10k files).
    """
    if not config.is_image:
        noise = config.toy_noise
        train = make_toy(config.dataset, config.toy_points, noise, seed=config.seed)
        test = make_toy(config.dataset, TOY_TEST_POINTS, noise, seed=(config.seed + 1) % 2**63)
        return train, test
    (train, _), (test, _) = _image_splits(config)
    return train.reshape(len(train), -1), test.reshape(len(test), -1)


def load_labels(config: TrainConfig) -> tuple[Tensor, Tensor]:
    """The int64 class labels ``[N]`` of the training and test images :func:`load_datasets` returns."""
    if not config.is_image:
        raise ValueError(f"{config.dataset} is a 2D toy: its points have no class labels")
    (_, train), (_, test) = _image_splits(config)
    return train, test


def _image_splits(config: TrainConfig) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """((train images, labels), (test images, labels)) of an image config, with its holdout applied."""
    root = config.resolved_data_dir()
    if config.holdout:
        images, labels = load_mnist(root, "test", config.dataset)
        if config.holdout >= len(images):
            raise ValueError(
                f"holdout {config.holdout} leaves no training images: the test split has {len(images)}"
            )
        cut = len(images) - config.holdout
        return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])
    try:
        train = load_mnist(root, "train", config.dataset)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{error}. Or, with only the test files, train on part of them: --holdout 1000"
        ) from None
    return train, load_mnist(root, "test", config.dataset)


def check_datasets(
    config: TrainConfig, train: Tensor, test: Tensor, world_size: int = 1
) -> tuple[Tensor, Tensor]:
    """Checks data against the config and returns it flat: ``[N, 784]`` uint8 or ``[N, 2]`` float32."""
    checked = []
    for name, data in (("train_data", train), ("test_data", test)):
        if not isinstance(data, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(data).__name__}")
        if config.is_image:
            if data.dtype != torch.uint8 or data.dim() < 2 or data[0].numel() != IMAGE_DIMS:
                raise ValueError(
                    f"{name} must hold uint8 images [N, 28, 28] (raw pixels 0..255) for {config.dataset}, "
                    f"got {data.dtype} {list(data.shape)}"
                )
            data = data.reshape(len(data), IMAGE_DIMS)
        else:
            if data.dim() != 2 or not data.is_floating_point():
                raise ValueError(f"{name} must be float points [N, 2], got {data.dtype} {list(data.shape)}")
            if data.shape[1] % 2:
                raise ValueError(
                    f"{name} has {data.shape[1]} coordinates per sample; a coupling splits samples into two "
                    "equal halves, so the number of coordinates must be even"
                )
            if data.shape[1] != TOY_DIMS:
                raise ValueError(f"{name} must hold 2D points [N, 2], got {list(data.shape)}")
            data = data.to(torch.float32)
        if len(data) == 0:
            raise ValueError(f"{name} is empty")
        checked.append(data.cpu())
    train, test = checked
    if config.batch_size > len(train):
        raise ValueError(
            f"batch_size {config.batch_size} is larger than the {len(train)} training samples; lower it"
        )
    if config.batch_size % world_size:
        raise ValueError(
            f"batch_size {config.batch_size} (the global batch) must split evenly over {world_size} processes"
        )
    return train, test


def training_data(
    config: TrainConfig,
    train: Tensor | None = None,
    test: Tensor | None = None,
    train_labels: Tensor | None = None,
    test_labels: Tensor | None = None,
    world_size: int = 1,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """A run's data, checked (:func:`check_datasets`): the given splits, else the config's dataset,
    and for a conditional run the class labels as int64 ``[N]`` (None, None for other runs).

    A conditional run with given data needs given labels too."""
    given_data = train is not None or test is not None
    if train is None or test is None:
        loaded_train, loaded_test = load_datasets(config)
        train = loaded_train if train is None else train
        test = loaded_test if test is None else test
    train, test = check_datasets(config, train, test, world_size)
    if not config.conditional:
        return train, test, None, None
    if train_labels is None or test_labels is None:
        if given_data:
            raise ValueError(
                "a conditional model needs the class of every image: pass train_labels and test_labels "
                "with train_data and test_data"
            )
        train_labels, test_labels = load_labels(config)
    checked = []
    for name, labels, data in (("train", train_labels, train), ("test", test_labels, test)):
        if not isinstance(labels, Tensor) or labels.shape != (len(data),) or labels.is_floating_point():
            got = list(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(f"{name}_labels must be [{len(data)}] integer class indices, got {got}")
        checked.append(labels.to(torch.int64).cpu())
    return train, test, checked[0], checked[1]


class NegativeLogLikelihood(nn.Module):
    """-logProbability per sample, as a forward() so DistributedDataParallel can wrap it."""

    def __init__(self, flow: Flow) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            return -self.flow.logProbability(x)
        return -self.flow.logProbability(x, labels)  # a conditional flow: -log p(x | its class)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused where torch supports it for these parameters (several times faster on CPU)."""
    parameters = list(model.parameters())
    settings = {"lr": config.lr, "betas": (0.9, config.adam_beta2), "weight_decay": config.weight_decay}
    try:
        return torch.optim.AdamW(parameters, fused=True, **settings)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(parameters, **settings)
