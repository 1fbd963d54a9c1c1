"""Class conditioning: labels as one-hot context, and a label-dependent affine map of the latent."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import ImageBijection


def one_hot_labels(labels: int | Tensor, batch: int, num_classes: int, like: Tensor) -> Tensor:
    """Checks ``labels`` (an int, or ``[batch]`` integer class indices) and returns ``[batch, K]`` one-hot."""
    if isinstance(labels, bool) or not isinstance(labels, (int, Tensor)):
        raise ValueError(
            f"labels must be an int or a [batch] tensor of class indices 0..{num_classes - 1}, "
            f"got {type(labels).__name__}"
        )
    if isinstance(labels, int):
        labels = torch.full((batch,), labels, dtype=torch.int64)
    if labels.dim() != 1 or len(labels) != batch or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be a [{batch}] tensor of integer class indices, "
            f"got {labels.dtype} {list(labels.shape)}"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}, "
            f"got values from {int(labels.min())} to {int(labels.max())}"
        )
    return F.one_hot(labels.to(device=like.device, dtype=torch.int64), num_classes).to(like.dtype)


class ClassAffine(ImageBijection):
    """A label-dependent diagonal affine map of the whole latent: x = m_y + exp(s_y) * z.

    Composed with the standard Gaussian prior it gives each class y its own mean m_y and scale exp(s_y)
    per coordinate, the class-conditional top prior of Glow (Kingma and Dhariwal 2018, section 5);
    log|det dx/dz| = sum s_y. m and s start at zero (the unconditional prior).
    """

    label = "class prior: x = m_y + exp(s_y) * z"

    def __init__(self, shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        size = math.prod(shape)
        self.shape = list(shape)
        self.mean = nn.Parameter(torch.zeros(num_classes, size))
        self.log_scale = nn.Parameter(torch.zeros(num_classes, size))

    def _tables(self, context: Tensor | None, h: Tensor) -> tuple[Tensor, Tensor]:
        if context is None:
            raise ValueError("this layer is class-conditional: pass the labels")
        shape = (len(h), *self.shape)
        context = context.to(self.mean.dtype)
        return (context @ self.mean).view(shape).to(h.dtype), (context @ self.log_scale).view(shape).to(
            h.dtype
        )

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mean, log_scale = self._tables(context, z)
        return mean + torch.exp(log_scale) * z, log_scale.flatten(1).sum(1)

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mean, log_scale = self._tables(context, x)
        return (x - mean) * torch.exp(-log_scale), -log_scale.flatten(1).sum(1)


class LatentAffine(ImageBijection):
    """A learned diagonal affine map of the whole latent: x = m + exp(s) * z.

    Composed with the standard Gaussian prior it is a learned mean and scale per coordinate, Glow's
    "learned top prior" for an unconditional model (the one-class case of :class:`ClassAffine`);
    log|det dx/dz| = sum s. m and s start at zero.
    """

    label = "learned prior: x = m + exp(s) * z"

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(1, *shape))
        self.log_scale = nn.Parameter(torch.zeros(1, *shape))

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_scale = self.log_scale.to(z.dtype)
        return self.mean.to(z.dtype) + torch.exp(log_scale) * z, log_scale.sum().expand(len(z))

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_scale = self.log_scale.to(x.dtype)
        return (x - self.mean.to(x.dtype)) * torch.exp(-log_scale), (-log_scale.sum()).expand(len(x))
