"""The tour's parts: the model to follow (fresh or a trained run), the traced digit, tensors as pictures."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dashboard.services import state
from dashboard.widgets.images import enlarge
from flows.data.pixels import PIXEL_LEVELS, bits_per_dim
from flows.models import Flow
from flows.trace import Check, Step, check, trace, way_back
from flows.training import TrainConfig, runs
from flows.training.factory import build_model

FRESH = "Fresh small RealNVP (2 blocks of 64, random weights)"


def model_choices() -> dict[str, str | None]:
    """Label -> run folder (None for the fresh model): the fresh model, every run with a checkpoint, then
    the shipped examples."""
    choices: dict[str, str | None] = {FRESH: None}
    for info in state.runs_and_examples():
        if info.config is not None and info.config.is_image:
            kind = "Example" if info.example else "Run"
            choices[f"{kind} {info.label.removesuffix(' (example)')} ({info.config.model})"] = str(info.path)
    return choices


def fresh_model() -> Flow:
    """A small MNIST RealNVP whose conditioners' weights are all random (none zero), so each layer acts."""
    model = build_model(TrainConfig(model="realnvp", dataset="mnist", hidden=[64], blocks=2))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=generator))
    return model.eval()


def _checkpoint(run_path: str) -> str:
    """The first of "best", "last", "export" (an example's weights) that the run has."""
    found = [which for which in runs.WEIGHTS if runs.checkpoint_path(run_path, which).is_file()]
    return found[0] if found else "last"


def tour_model(run_path: str | None) -> tuple[Flow, bool]:
    """The chosen model in float64 (a copy; the cached run model is untouched); is it conditional."""
    model = (
        fresh_model()
        if run_path is None
        else copy.deepcopy(state.run_model(run_path, _checkpoint(run_path))[0])
    )
    model = model.double().eval()
    return model, bool(getattr(model, "conditional", False))


@dataclass
class Tour:
    """One digit followed through a model: pixels, dequantized x, the steps, the check, the way back."""

    pixels: Tensor  # uint8 [28, 28]
    label: int
    x: Tensor  # [1, *shape] float64 in [0, 1)
    steps: list[Step]
    check: Check
    bits_per_dim: float
    back: list[tuple[str, Tensor]]  # z -> x for a sample from the prior


def follow(model: Flow, conditional: bool, pixels: Tensor, label: int, seed: int) -> Tour:
    """Dequantizes ``pixels`` with ``seed``, traces it, checks the sum and draws one sample's way back."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(pixels.shape, generator=generator, dtype=torch.float64)
    x = ((pixels.double() + noise) / PIXEL_LEVELS).reshape(1, *model.shape)
    labels = torch.tensor([label]) if conditional else None
    steps = trace(model, x, labels)
    result = check(model, x, steps, labels)
    z = torch.randn(1, *model.shape, generator=generator, dtype=torch.float64)
    back = way_back(model, z, labels)
    bpd = float(bits_per_dim(result.log_probability, x[0].numel()))
    return Tour(pixels, label, x, steps, result, bpd, back)


def picture(tensor: Tensor, zoom: int = 8) -> np.ndarray:
    """A tensor of one sample as a grey uint8 picture (min -> black, max -> white), channels side by side."""
    v = tensor.detach().double().reshape(-1)
    n = v.numel()
    if tensor.dim() >= 3 and tensor.shape[-1] * tensor.shape[-2] < n:
        h, w = tensor.shape[-2], tensor.shape[-1]
        channels = v.reshape(-1, h, w)
        image = torch.cat(list(channels), 1)  # [H, C*W]
    elif n == 784:
        image = v.reshape(28, 28)
    else:
        width = 28 if n % 28 == 0 else math.ceil(math.sqrt(n))
        image = torch.cat([v, v.new_full(((-n) % width,), float(v.min()))]).reshape(-1, width)
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else torch.zeros_like(image)
    pixels = (scaled * 255).round().to(torch.uint8).numpy()
    return enlarge(pixels, max(1, zoom * 28 // max(pixels.shape)))
