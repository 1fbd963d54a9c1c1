"""Prior (base) distributions over the latent space, with the seed's interface."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_shape(shape: Sequence[int]) -> list[int]:
    """Validates a shape list such as ``[784]`` or ``[1, 28, 28]``."""
    shape = [shape] if isinstance(shape, int) else list(shape)
    if not shape or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shape):
        raise ValueError(f"shape must be a non-empty list of positive integers, got {shape}")
    return shape


class Prior(nn.Module):
    """A distribution over ``[batch, *shape]`` tensors with independent coordinates.

    Subclasses implement ``_log_density`` (element-wise, standardised) and ``_sample_standard``.
    Each coordinate is ``loc + exp(log_scale) * e`` with ``e`` standard; ``loc`` and
    ``log_scale`` are buffers, or parameters when ``learnable=True``.
    """

    def __init__(self, shape: Sequence[int], learnable: bool = False) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        self.learnable = learnable
        loc, log_scale = torch.zeros(self.shape), torch.zeros(self.shape)
        if learnable:
            self.loc = nn.Parameter(loc)
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("loc", loc)
            self.register_buffer("log_scale", log_scale)

    @property
    def numel(self) -> int:
        """Number of coordinates n."""
        return math.prod(self.shape)

    def sample(self, batchSize: int) -> Tensor:  # noqa: N803 (the seed's name)
        """Draws ``batchSize`` samples: a tensor of shape ``[batchSize, *shape]``."""
        if not isinstance(batchSize, int) or isinstance(batchSize, bool) or batchSize < 1:
            raise ValueError(f"batchSize must be a positive integer, got {batchSize!r}")
        e = self._sample_standard((batchSize, *self.shape))
        return self.loc + torch.exp(self.log_scale) * e

    def logProbability(self, x: Tensor) -> Tensor:  # noqa: N802 (the seed's name)
        """Log density of each sample: ``[batch, *shape]`` -> ``[batch]``."""
        if not isinstance(x, Tensor) or list(x.shape[1:]) != self.shape:
            got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"expected input of shape [batch, {', '.join(map(str, self.shape))}], got {got}")
        e = (x - self.loc) * torch.exp(-self.log_scale)
        log_density = self._log_density(e) - self.log_scale
        return log_density.reshape(len(x), -1).sum(1)

    def _sample_standard(self, size: tuple[int, ...]) -> Tensor:
        raise NotImplementedError

    def _log_density(self, e: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"shape={self.shape}, learnable={self.learnable}"


class Gaussian(Prior):
    """Diagonal Gaussian N(loc, exp(log_scale)^2); standard normal by default.

    log p(x) = sum_i [-(x_i - loc_i)^2 / (2 sigma_i^2) - log sigma_i - log(2 pi) / 2].
    """

    def _sample_standard(self, size: tuple[int, ...]) -> Tensor:
        return torch.randn(size, dtype=self.loc.dtype, device=self.loc.device)

    def _log_density(self, e: Tensor) -> Tensor:
        return -0.5 * e.square() - 0.5 * math.log(2 * math.pi)


class Logistic(Prior):
    """Logistic distribution per coordinate, the NICE paper's prior for MNIST.

    log p(e) = -(softplus(e) + softplus(-e)) for the standard logistic;
    see Dinh et al. 2014, https://arxiv.org/abs/1410.8516.
    """

    def _sample_standard(self, size: tuple[int, ...]) -> Tensor:
        eps = torch.finfo(self.loc.dtype).eps
        u = torch.rand(size, dtype=self.loc.dtype, device=self.loc.device).clamp_(eps, 1 - eps)
        return torch.log(u) - torch.log1p(-u)

    def _log_density(self, e: Tensor) -> Tensor:
        return -(F.softplus(e) + F.softplus(-e))


PRIORS: dict[str, type[Prior]] = {"gaussian": Gaussian, "logistic": Logistic}
