"""Image flows: a prior of shape ``[C, H, W]`` carried to images by multi-scale levels.

``ConvRealNVP`` (Dinh et al. 2016) and ``Glow`` (Kingma and Dhariwal 2018), both optionally
class-conditional (``num_classes=K``). They keep the seed's contract: the prior is given to the
constructor, ``sample(batchSize)`` draws ``[batchSize, C, H, W]``, ``logProbability(x)`` is exact by the
change of variables, ``forward``/``inverse`` return ``(output, log_abs_det [batch])``; conditional
models take ``labels`` (an int or ``[batch]`` class indices) in each of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from ..bijection import Bijection
from ..models import Flow
from ..priors import Prior
from .actnorm import ActNorm
from .base import ImageBijection
from .conditioning import ClassAffine, LatentAffine, one_hot_labels
from .conv1x1 import InvertibleConv1x1
from .couplings import ChannelCoupling, CheckerboardCoupling
from .multiscale import leaves, level


class ImageFlow(Flow):
    """A flow whose layers work on ``[batch, C, H, W]`` images (flat layers such as Logit also fit).

    ``layers`` are image bijections (which receive the one-hot labels of a conditional model as
    ``context``) or flat :class:`flows.bijection.Bijection` layers, applied to the flattened image.
    """

    def __init__(self, prior: Prior, layers: Sequence[Bijection], num_classes: int = 0) -> None:
        _check_image_prior(prior, num_classes)
        super().__init__(prior, layers)
        self.num_classes = num_classes

    @property
    def conditional(self) -> bool:
        """True when the density depends on a class label."""
        return self.num_classes > 0

    def _context(self, labels: int | Tensor | None, like: Tensor) -> Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise ValueError("this model is not class-conditional (num_classes=0): leave labels out")
            return None
        if labels is None:
            raise ValueError(
                f"this model is class-conditional ({self.num_classes} classes): pass labels, an int or a "
                f"[{len(like)}] tensor of class indices"
            )
        return one_hot_labels(labels, len(like), self.num_classes, like)

    def _step(
        self, layer: Bijection, h: Tensor, context: Tensor | None, inverse: bool
    ) -> tuple[Tensor, Tensor]:
        if isinstance(layer, ImageBijection):
            return layer.inverse(h, context) if inverse else layer(h, context)
        out, log_abs_det = (layer.inverse if inverse else layer)(h.reshape(len(h), -1))
        return out.reshape(h.shape), log_abs_det

    def forward(self, z: Tensor, labels: int | Tensor | None = None) -> tuple[Tensor, Tensor]:
        """latent -> data: ``z [batch, C, H, W]`` -> ``(x, log|det dF/dz| [batch])``."""
        self._flatten(z)  # checks the shape
        context = self._context(labels, z)
        total = z.new_zeros(len(z))
        for layer in self.layers:
            z, log_abs_det = self._step(layer, z, context, inverse=False)
            total = total + log_abs_det
        return z, total

    def inverse(self, x: Tensor, labels: int | Tensor | None = None) -> tuple[Tensor, Tensor]:
        """data -> latent: ``x [batch, C, H, W]`` -> ``(z, log|det dF^-1/dx| [batch])``."""
        self._flatten(x)
        context = self._context(labels, x)
        total = x.new_zeros(len(x))
        for layer in reversed(self.layers):
            x, log_abs_det = self._step(layer, x, context, inverse=True)
            total = total + log_abs_det
        return x, total

    def logProbability(self, x: Tensor, labels: int | Tensor | None = None) -> Tensor:  # noqa: N802
        """Exact log density of each image (of class ``labels``, if conditional): ``[batch]``."""
        z, log_abs_det = self.inverse(x, labels)
        return self.prior.logProbability(z) + log_abs_det

    def sample(self, batchSize: int, labels: int | Tensor | None = None) -> Tensor:  # noqa: N803
        """Draws ``[batchSize, C, H, W]`` (of class ``labels``, if conditional): x = F(z), z ~ prior."""
        return self.forward(self.prior.sample(batchSize), labels)[0]

    def leaves(
        self, z: Tensor, labels: int | Tensor | None = None
    ) -> Iterator[tuple[str, Bijection, Tensor]]:
        """Every leaf layer of the forward pass from ``z``, as ``(name, layer, its input)``, in order."""
        context = self._context(labels, z)
        for index, layer in enumerate(self.layers):
            if isinstance(layer, ImageBijection):
                yield from leaves(layer, z, context, f"{index}.")
            else:
                yield f"{index}: {layer.label or type(layer).__name__}", layer, z
            z = self._step(layer, z, context, inverse=False)[0]


def _check_image_prior(prior: Prior, num_classes: int) -> None:
    if not isinstance(prior, Prior):
        raise ValueError(
            f"prior must be a flows prior such as Gaussian([1, 28, 28]), got {type(prior).__name__}"
        )
    if len(prior.shape) != 3:
        raise ValueError(
            f"an image flow needs an image-shaped prior [C, H, W] such as Gaussian([1, 28, 28]), "
            f"got shape {prior.shape}"
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise ValueError(f"num_classes must be 0 (unconditional) or a positive integer, got {num_classes!r}")


def _check_sizes(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _top(prior: Prior, num_classes: int) -> list[ImageBijection]:
    """The learned top prior: a mean and scale per latent coordinate, per class for a conditional model."""
    return [ClassAffine(prior.shape, num_classes) if num_classes else LatentAffine(prior.shape)]


class ConvRealNVP(ImageFlow):
    """Multi-scale RealNVP: checkerboard couplings, squeeze, channel couplings, factor out; per level.

    Each level (data -> latent) applies ``steps`` checkerboard-masked affine couplings at its input
    resolution, squeezes 2x2 patches into channels, applies ``steps`` channel-masked couplings (the
    halves alternate), then factors out half of the channels (all but the last level). Conditioners are
    convolutional residual nets (``residual_blocks`` blocks of width ``hidden_channels``). An actnorm
    precedes each coupling, in place of the paper's batch normalisation (whose running statistics make
    the density depend on the batch). Dinh et al. 2016, https://arxiv.org/abs/1605.08803.
    """

    def __init__(
        self,
        prior: Prior,
        levels: int = 2,
        steps: int = 4,
        hidden_channels: int = 64,
        residual_blocks: int = 1,
        num_classes: int = 0,
    ) -> None:
        _check_image_prior(prior, num_classes)
        _check_sizes(levels=levels, steps=steps, hidden_channels=hidden_channels)
        context = num_classes

        def full_resolution(shape: list[int]) -> list[ImageBijection]:
            c, height, width = shape
            return [
                layer
                for i in range(steps)
                for layer in (
                    ActNorm(c),
                    CheckerboardCoupling(c, height, width, i % 2, hidden_channels, residual_blocks, context),
                )
            ]

        def squeezed(shape: list[int]) -> list[ImageBijection]:
            c = shape[0]
            return [
                layer
                for i in range(steps)
                for layer in (
                    ActNorm(c),
                    ChannelCoupling(c, hidden_channels, bool(i % 2), residual_blocks, context),
                )
            ]

        body = level(prior.shape, levels, full_resolution, squeezed, hidden_channels, context)
        super().__init__(prior, [*_top(prior, num_classes), body], num_classes)
        self.levels, self.steps, self.hidden_channels = levels, steps, hidden_channels


class Glow(ImageFlow):
    """Glow: per level a squeeze, ``steps`` x (actnorm, invertible 1x1 conv, affine coupling), a split.

    Data -> latent, each step is actnorm, an LU-parametrised 1x1 convolution (``lu=False``: a full
    matrix) and an affine channel coupling with a three-layer convolutional conditioner of width
    ``hidden_channels``; all but the last level factor out half of the channels with a learned Gaussian.
    Kingma and Dhariwal 2018, https://arxiv.org/abs/1807.03039.
    """

    def __init__(
        self,
        prior: Prior,
        levels: int = 3,
        steps: int = 8,
        hidden_channels: int = 64,
        num_classes: int = 0,
        lu: bool = True,
    ) -> None:
        _check_image_prior(prior, num_classes)
        _check_sizes(levels=levels, steps=steps, hidden_channels=hidden_channels)
        context = num_classes

        def squeezed(shape: list[int]) -> list[ImageBijection]:
            c = shape[0]
            return [
                layer
                for _ in range(steps)
                for layer in (
                    ActNorm(c),
                    InvertibleConv1x1(c, lu),
                    ChannelCoupling(c, hidden_channels, context=context),
                )
            ]

        body = level(prior.shape, levels, lambda shape: [], squeezed, hidden_channels, context)
        super().__init__(prior, [*_top(prior, num_classes), body], num_classes)
        self.levels, self.steps, self.hidden_channels = levels, steps, hidden_channels


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


#: Classes of a conditional model trained on MNIST or Fashion-MNIST.
DATASET_CLASSES = 10


def build_conv_realnvp(
    prior: Prior,
    levels: int = 2,
    steps_per_level: int = 4,
    hidden_channels: int = 64,
    residual_blocks: int = 1,
    conditional: bool = False,
) -> ConvRealNVP:
    """:class:`ConvRealNVP` from the training config's field names (the registry's builder)."""
    return ConvRealNVP(
        prior,
        levels,
        steps_per_level,
        hidden_channels,
        residual_blocks,
        DATASET_CLASSES if conditional else 0,
    )


def build_glow(
    prior: Prior,
    levels: int = 3,
    steps_per_level: int = 8,
    hidden_channels: int = 64,
    conditional: bool = False,
) -> Glow:
    """:class:`Glow` from the training config's field names (the registry's builder)."""
    return Glow(prior, levels, steps_per_level, hidden_channels, DATASET_CLASSES if conditional else 0)


def grid_labels(model: Flow, count: int) -> Tensor | None:
    """Labels 0, 1, ..., K-1, 0, 1, ... for ``count`` samples of a conditional model (None otherwise):
    in a grid of K columns, each column is one class."""
    classes = getattr(model, "num_classes", 0)
    return torch.arange(count) % classes if classes else None
