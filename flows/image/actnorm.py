"""Activation normalisation (Glow's actnorm)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .base import ImageBijection


class ActNorm(ImageBijection):
    """Per-channel affine map with data-dependent initialisation.

    Data -> latent: z = (x + b) * exp(s); latent -> data: x = z * exp(-s) - b, with b, s in R^C, so
    log|det dz/dx| = H W sum_c s_c. The first :meth:`inverse` in training mode sets b and s so that
    z has zero mean and unit variance per channel on that batch (averaged over the processes under
    torch.distributed); the ``initialized`` flag is a buffer, saved in the state dict, so a reloaded
    model is never re-initialised. Kingma and Dhariwal 2018, https://arxiv.org/abs/1807.03039,
    section 3.1.
    """

    label = "actnorm: x = z * exp(-s) - b"

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Sets b = -mean and s = -log std of ``x [B, C, H, W]`` per channel."""
        values = x.detach().transpose(0, 1).reshape(x.shape[1], -1).double()  # (C, B H W)
        moments = torch.stack(
            [values.sum(1), values.square().sum(1), values.new_full((len(values),), values.shape[1])]
        )
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(moments)
        total, squares, count = moments
        mean = total / count
        std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-6)
        self.bias.copy_(-mean.view_as(self.bias).to(self.bias.dtype))
        self.log_scale.copy_(-std.log().view_as(self.log_scale).to(self.log_scale.dtype))
        self.initialized.fill_(True)

    def _log_abs_det(self, h: Tensor) -> Tensor:
        pixels = h.shape[2] * h.shape[3]
        return (pixels * self.log_scale.sum()).to(h.dtype).expand(len(h))

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z * torch.exp(-self.log_scale) - self.bias, -self._log_abs_det(z)

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        return (x + self.bias) * torch.exp(self.log_scale), self._log_abs_det(x)

    def extra_repr(self) -> str:
        return f"channels={self.bias.shape[1]}"
