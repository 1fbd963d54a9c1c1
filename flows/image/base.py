"""The image bijection contract and the squeeze.

Image layers keep the bijection contract of :mod:`flows.bijection` (``forward(z)`` latent -> data,
``inverse(x)`` data -> latent, each returning ``(output, log_abs_det [batch])``) on tensors of shape
``[batch, C, H, W]``, with one optional argument more: ``context``, a ``[batch, K]`` one-hot label
that class-conditional layers read and every other layer ignores.
"""

from __future__ import annotations

from torch import Tensor

from ..bijection import Bijection


class ImageBijection(Bijection):
    """An invertible map on ``[batch, C, H, W]`` with a tractable log|det|, optionally conditioned."""

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """latent -> data: ``(x, log|det dx/dz|)``."""
        raise NotImplementedError

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """data -> latent: ``(z, log|det dz/dx|)``."""
        raise NotImplementedError

    def output_shape(self, shape: list[int]) -> list[int]:
        """The data-side shape ``[C, H, W]`` this layer gives for a latent-side input ``shape``."""
        return list(shape)


def squeeze(h: Tensor) -> Tensor:
    """Space to channels: ``[B, C, H, W]`` -> ``[B, 4C, H/2, W/2]``, each 2x2 patch into 4 channels."""
    b, c, height, width = h.shape
    h = h.reshape(b, c, height // 2, 2, width // 2, 2)  # (B, C, H/2, 2, W/2, 2)
    return h.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, height // 2, width // 2)


def unsqueeze(h: Tensor) -> Tensor:
    """Channels to space, the inverse of :func:`squeeze`: ``[B, 4C, H, W]`` -> ``[B, C, 2H, 2W]``."""
    b, c4, height, width = h.shape
    h = h.reshape(b, c4 // 4, 2, 2, height, width)  # (B, C, 2, 2, H, W)
    return h.permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * height, 2 * width)


class Squeeze(ImageBijection):
    """Moves each 2x2 patch of pixels into channels: ``[C, H, W]`` <-> ``[4C, H/2, W/2]``.

    A permutation of the coordinates, so log|det| = 0 in both directions. ``forward`` (latent ->
    data) is the squeeze, read with the latent in the data's layout; Dinh et al. 2016,
    https://arxiv.org/abs/1605.08803, section 3.6. H and W must be even.
    """

    label = "squeeze: [C, H, W] -> [4C, H/2, W/2]"

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return squeeze(z), z.new_zeros(len(z))

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return unsqueeze(x), x.new_zeros(len(x))

    def output_shape(self, shape: list[int]) -> list[int]:
        c, height, width = shape
        return [4 * c, height // 2, width // 2]


class Unsqueeze(ImageBijection):
    """The inverse of :class:`Squeeze` as a layer: ``[4C, H, W]`` -> ``[C, 2H, 2W]``; log|det| = 0."""

    label = "unsqueeze: [4C, H, W] -> [C, 2H, 2W]"

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return unsqueeze(z), z.new_zeros(len(z))

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return squeeze(x), x.new_zeros(len(x))

    def output_shape(self, shape: list[int]) -> list[int]:
        c, height, width = shape
        return [c // 4, 2 * height, 2 * width]
