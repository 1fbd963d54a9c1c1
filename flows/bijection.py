"""The bijection contract shared by every layer of a flow.

Direction, written down once: a flow carries the prior to the data, as the seed's F does.
``forward(z)`` maps latent -> data and ``inverse(x)`` maps data -> latent; each returns
``(output, log_abs_det)`` where ``log_abs_det`` has shape ``[batch]`` and is
log|det d output / d input| of that direction. Layers work on flat ``[batch, n]`` tensors;
:class:`flows.models.Flow` reshapes to and from the prior's shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Bijection(nn.Module):
    """An invertible map on ``[batch, n]`` with a tractable log|det Jacobian|."""

    #: Short human-readable name, e.g. "f1: y <- exp(su(x)) * y + u(x)".
    label: str = ""

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """latent -> data: ``(x, log|det dx/dz|)``."""
        raise NotImplementedError

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """data -> latent: ``(z, log|det dz/dx|)``."""
        raise NotImplementedError


class Scaling(Bijection):
    """NICE's final diagonal scaling: x = exp(s) * z, log|det| = sum_i s_i.

    Dinh et al. 2014 (https://arxiv.org/abs/1410.8516), section 3.3. ``s`` starts at 0.
    """

    label = "scaling: x = exp(s) * z"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(n))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z * torch.exp(self.log_scale), self.log_scale.sum().expand(len(z))

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x * torch.exp(-self.log_scale), (-self.log_scale.sum()).expand(len(x))


class Logit(Bijection):
    """Maps R^n onto the box (-a/(1-2a), (1-a)/(1-2a))^n, which contains pixel space [0, 1)^n:
    x = (sigmoid(z) - a) / (1 - 2a).

    The inverse is the logit transform of Dinh et al. 2016 (https://arxiv.org/abs/1605.08803),
    z = logit(a + (1 - 2a) x), which keeps z finite at the pixel values 0 and 1. Forward log|det| is
    sum_i [log sigmoid(z_i) + log sigmoid(-z_i)] - n log(1 - 2a). Put it last in the forward
    order so the flow's density is a density of pixel values. Samples can fall slightly outside
    [0, 1) (clip them for display); an input of :meth:`inverse` outside the box has density 0, so its
    row gets log|det| = -inf (``logProbability`` -inf) and z from a point inside the box.
    """

    label = "logit: x = (sigmoid(z) - a) / (1 - 2a)"

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must lie in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        shrink = 1 - 2 * self.alpha
        x = (torch.sigmoid(z) - self.alpha) / shrink
        log_abs_det = (F.logsigmoid(z) + F.logsigmoid(-z)).sum(1) - z.shape[1] * math.log(shrink)
        return x, log_abs_det

    def support(self) -> tuple[float, float]:
        """The open interval each coordinate of the forward image covers."""
        shrink = 1 - 2 * self.alpha
        return -self.alpha / shrink, (1 - self.alpha) / shrink

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shrink = 1 - 2 * self.alpha
        p = self.alpha + shrink * x
        inside = ~((p <= 0) | (p >= 1))  # [batch, n]; NaN stays "inside", so it propagates as NaN
        p = torch.where(inside, p, torch.full_like(p, 0.5))  # finite z for points outside the support
        z = torch.log(p) - torch.log1p(-p)
        log_abs_det = x.shape[1] * math.log(shrink) - (torch.log(p) + torch.log1p(-p)).sum(1)
        outside = torch.full_like(log_abs_det, -math.inf)
        return z, torch.where(inside.all(1), log_abs_det, outside)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
