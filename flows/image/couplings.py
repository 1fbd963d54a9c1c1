"""Masked affine couplings on images with convolutional conditioners (RealNVP, Glow).

The changed part a of the input is mapped to a' = exp(s) * a + t, with (t, s) computed by a
convolutional net from the unchanged part (and the label, for a conditional model); the Jacobian is
triangular, so log|det| = sum s over the changed coordinates. Derivation: docs/image_flows.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..couplings import TanhBound
from .base import ImageBijection


class ConvNet(nn.Module):
    """The conditioner: conv3x3 -> ReLU -> conv1x1 -> ReLU -> residual blocks -> conv3x3 (zero-initialised).

    ``[B, in, H, W]`` (with ``context [B, K]`` broadcast over the pixels as K more input channels) ->
    ``[B, out, H, W]``. The last convolution starts at zero, so a fresh coupling is the identity.
    ``residual_blocks`` adds blocks h + conv3x3(ReLU(conv3x3(h))) (RealNVP's residual conditioner);
    0 gives Glow's three-layer net.
    """

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int, residual_blocks: int = 0, context: int = 0
    ) -> None:
        super().__init__()
        self.context = context
        self.first = nn.Conv2d(in_channels + context, hidden, 3, padding=1)
        self.middle = nn.Conv2d(hidden, hidden, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1)
            )
            for _ in range(residual_blocks)
        )
        self.last = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    def forward(self, h: Tensor, context: Tensor | None = None) -> Tensor:
        if self.context:
            if context is None:
                raise ValueError("this conditioner is class-conditional: pass the labels")
            labels = context.to(h.dtype)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
            h = torch.cat([h, labels], 1)  # (B, in + K, H, W)
        h = F.relu(self.middle(F.relu(self.first(h))))
        for block in self.blocks:
            h = F.relu(h + block(h))
        return self.last(h)


def checkerboard_mask(height: int, width: int, parity: int) -> Tensor:
    """``[1, 1, H, W]`` of 1.0 where (row + col) % 2 == parity: the pixels that condition."""
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    return ((rows + cols) % 2 == parity).float().view(1, 1, height, width)


class CheckerboardCoupling(ImageBijection):
    """RealNVP's spatial coupling: pixels of one checkerboard colour condition the others.

    With mask m (1 on conditioning pixels), (t, s) = net(m * z) masked to (1 - m), s bounded as
    c * tanh(raw) with a learned per-channel c starting at 1:
    x = m * z + (1 - m) * (exp(s) * z + t); log|det dx/dz| = sum (1 - m) * s.
    Dinh et al. 2016, https://arxiv.org/abs/1605.08803, section 3.4.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        parity: int,
        hidden: int,
        residual_blocks: int = 1,
        context: int = 0,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.label = f"checkerboard coupling ({'even' if parity == 0 else 'odd'} squares condition)"
        self.register_buffer("mask", checkerboard_mask(height, width, parity), persistent=False)
        self.net = ConvNet(channels, 2 * channels, hidden, residual_blocks, context)
        self.bound = TanhBound((1, channels, 1, 1))

    def _shift_and_log_scale(self, kept: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(kept.dtype)
        shift, raw = self.net(kept * mask, context).chunk(2, 1)
        return shift * (1 - mask), self.bound(raw) * (1 - mask)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, log_scale = self._shift_and_log_scale(z, context)
        return z * torch.exp(log_scale) + shift, _sum(log_scale, z)

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, log_scale = self._shift_and_log_scale(x, context)
        return (x - shift) * torch.exp(-log_scale), -_sum(log_scale, x)


class ChannelCoupling(ImageBijection):
    """Affine coupling across channels: one half of the channels conditions the other.

    With h = (a, b) split along channels (``flip=True`` swaps the roles), (t, s) = net(a),
    s = c * tanh(raw): x = (a, exp(s) * b + t); log|det dx/dz| = sum s. RealNVP's channel-wise mask
    (Dinh et al. 2016, section 3.4) and Glow's affine coupling (Kingma and Dhariwal 2018,
    https://arxiv.org/abs/1807.03039, section 3.3).
    """

    def __init__(
        self, channels: int, hidden: int, flip: bool = False, residual_blocks: int = 0, context: int = 0
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(
                f"a channel coupling needs at least 2 channels, got {channels}; squeeze the image first"
            )
        self.flip = flip
        self.conditioning = channels // 2 if not flip else channels - channels // 2
        changed = channels - self.conditioning
        self.label = f"channel coupling ({'second' if flip else 'first'} half of channels conditions)"
        self.net = ConvNet(self.conditioning, 2 * changed, hidden, residual_blocks, context)
        self.bound = TanhBound((1, changed, 1, 1))

    def _split(self, h: Tensor) -> tuple[Tensor, Tensor]:
        if self.flip:
            changed, kept = h[:, : h.shape[1] - self.conditioning], h[:, h.shape[1] - self.conditioning :]
        else:
            kept, changed = h[:, : self.conditioning], h[:, self.conditioning :]
        return kept, changed

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return torch.cat([changed, kept] if self.flip else [kept, changed], 1)

    def _shift_and_log_scale(self, kept: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        shift, raw = self.net(kept, context).chunk(2, 1)
        return shift, self.bound(raw)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        kept, changed = self._split(z)
        shift, log_scale = self._shift_and_log_scale(kept, context)
        return self._join(kept, changed * torch.exp(log_scale) + shift), _sum(log_scale, z)

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        kept, changed = self._split(x)
        shift, log_scale = self._shift_and_log_scale(kept, context)
        return self._join(kept, (changed - shift) * torch.exp(-log_scale)), -_sum(log_scale, x)


def _sum(log_scale: Tensor, h: Tensor) -> Tensor:
    """sum of s over all but the batch axis, in the wider of the two dtypes (float32 under bf16 autocast)."""
    return log_scale.flatten(1).sum(1, dtype=torch.promote_types(log_scale.dtype, h.dtype))
