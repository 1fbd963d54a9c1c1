"""Invertible 1x1 convolution (Glow), plain and LU-parametrised."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import ImageBijection


class InvertibleConv1x1(ImageBijection):
    """Mixes channels with an invertible matrix W at every pixel: x = W z.

    log|det dx/dz| = H W log|det W|. ``lu=True`` (the default) stores W = P L (U + diag(sign * exp(v)))
    with P a fixed permutation, L unit lower- and U strictly upper-triangular, so log|det W| = sum v costs
    O(C) instead of O(C^3); ``lu=False`` keeps W as a full matrix and uses ``slogdet``. W starts as a
    random rotation. Kingma and Dhariwal 2018, https://arxiv.org/abs/1807.03039, section 3.2.
    """

    label = "1x1 conv: x = W z"

    def __init__(self, channels: int, lu: bool = True) -> None:
        super().__init__()
        self.channels, self.lu = channels, lu
        weight = torch.linalg.qr(torch.randn(channels, channels))[0]
        if not lu:
            self.weight = nn.Parameter(weight)
            return
        permutation, lower, upper = torch.linalg.lu(weight)
        diagonal = torch.diagonal(upper)
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign", torch.sign(diagonal))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_diagonal = nn.Parameter(diagonal.abs().log())

    def matrix(self) -> tuple[Tensor, Tensor]:
        """``(W [C, C], log|det W|)``."""
        if not self.lu:
            return self.weight, torch.linalg.slogdet(self.weight)[1]
        eye = torch.eye(self.channels, dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_diagonal))
        return self.permutation @ lower @ upper, self.log_diagonal.sum()

    def _mix(self, h: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(h, weight.to(h.dtype).view(self.channels, self.channels, 1, 1))

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        weight, log_det = self.matrix()
        pixels = z.shape[2] * z.shape[3]
        return self._mix(z, weight), (pixels * log_det).to(z.dtype).expand(len(z))

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        weight, log_det = self.matrix()
        pixels = x.shape[2] * x.shape[3]
        inverse_weight = torch.linalg.inv(weight.double()).to(weight.dtype)
        return self._mix(x, inverse_weight), (-pixels * log_det).to(x.dtype).expand(len(x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lu={self.lu}"
