"""The Jacobian page's parts for the image flows (ConvRealNVP, Glow): fresh models on small images, and
the full Jacobian of any one leaf layer (coupling, actnorm, 1x1 convolution, squeeze, factor-out)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flows import Flow, Gaussian, Logit
from flows.image import ImageFlow
from flows.registry import FlowFamily
from flows.training import TrainConfig, build_model

#: The fresh image flows' sizes: small enough that every leaf's full Jacobian takes well under a second.
FRESH_IMAGE = {"levels": 2, "steps_per_level": 1, "hidden_channels": 8, "residual_blocks": 0}
#: Image shapes a fresh image flow can be checked on, by n.
IMAGE_SHAPES = {64: [1, 8, 8], 784: [1, 28, 28]}


def build_fresh_image_flow(family: FlowFamily, dims: int, seed: int, identity: bool) -> Flow:
    """A small fresh image flow on 1x8x8 (n = 64) or 1x28x28 (built as the trainer builds it), Logit last."""
    if dims not in IMAGE_SHAPES:
        raise ValueError(f"an image flow is checked on 1x8x8 (n = 64) or 1x28x28 (n = 784), got n = {dims}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if dims == 784:
            model = build_model(TrainConfig(model=family.name, **FRESH_IMAGE))
        else:
            options = {name: value for name, value in FRESH_IMAGE.items() if name in family.options}
            model = family.build(Gaussian(IMAGE_SHAPES[dims]), **options)
            model.layers.append(Logit(0.05))
    if not identity:
        randomise_zeros_(model, seed)
    return model.eval()


def randomise_zeros_(model: Flow, seed: int, scale: float = 0.05) -> Flow:
    """Re-draws every all-zero parameter (the conditioners' last convolutions, actnorm, the class prior)
    from N(0, scale^2), so a fresh flow is no longer the identity. In place; seeded."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
    return model


@dataclass
class LeafJacobian:
    """The full Jacobian of one leaf layer at the point where the flow's forward pass meets it."""

    name: str
    matrix: np.ndarray  # [n, n] float64, rows = outputs, columns = inputs (both flattened C, H, W)
    analytic_log_abs_det: float
    slogdet: float

    @property
    def zero_share(self) -> float:
        """The share of entries that are exactly zero (a triangular or block-diagonal structure shows)."""
        return float((self.matrix == 0).mean())


def leaf_names(model: ImageFlow, x: Tensor, labels: Tensor | None) -> list[str]:
    """The names of every leaf layer in forward order (latent to data)."""
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        z, _ = model.inverse(x.double(), labels)
        return [name for name, _, _ in model.leaves(z, labels)]


def leaf_jacobian(model: ImageFlow, x: Tensor, labels: Tensor | None, index: int) -> LeafJacobian:
    """The full Jacobian (autograd, float64) of leaf ``index`` where the pass from F^-1(x) meets it."""
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        z, _ = model.inverse(x.double(), labels)
        context = model._context(labels, z)
        name, layer, h = list(model.leaves(z, labels))[index]
        analytic = float(model._step(layer, h, context, inverse=False)[1][0])
    shape = h.shape[1:]
    matrix = torch.func.jacrev(
        lambda v: model._step(layer, v.view(1, *shape), context, inverse=False)[0].reshape(-1)
    )(h[0].reshape(-1))
    matrix = matrix.detach()
    slogdet = float(torch.linalg.slogdet(matrix)[1])
    return LeafJacobian(name, matrix.detach().numpy(), analytic, slogdet)


def structure_note(name: str) -> str:
    """What the picture of a leaf's Jacobian shows, and why its log|det| is what it is."""
    if "squeeze" in name:
        return "A **permutation**: one 1 in every row and column, so log|det| = 0."
    if "actnorm" in name:
        return "**Diagonal**: each channel scaled by its own exp(-s), so log|det| = −H·W·Σ s."
    if "1x1 conv" in name:
        return (
            "**Block diagonal** in pixel order: the same C×C matrix W at every pixel (the blocks are spread "
            "out here, coordinates being ordered channel by channel), so log|det| = H·W·log|det W|."
        )
    if "class prior" in name:
        return "**Diagonal**: each coordinate scaled by exp(s_y) of its class, so log|det| = Σ s_y."
    return (
        "**Triangular** once the conditioning coordinates come first: the kept half passes through "
        "(identity rows), each changed coordinate depends on itself only through exp(s), so log|det| = Σ s. "
        "The dense part (how t and s depend on the kept half) never enters the determinant."
    )
