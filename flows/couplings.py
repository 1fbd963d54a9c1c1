"""Coupling layers: the seed's f0 and f1, additive (NICE) and affine (RealNVP).

With the n inputs split into halves x, y in R^(n/2), the seed writes

    f0(x, y) = (exp(sv(y)) * x + v(y), y)      # changes x, conditioned on y
    f1(x, y) = (x, exp(su(x)) * y + u(x))      # changes y, conditioned on x

and one block F = f0 o f1 (f1 first). Each is block-triangular, so log|det| is the sum of the
log-scales (RealNVP) or 0 (NICE). See docs/jacobian.md for the derivation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .bijection import Bijection

SPLITS = ("half", "interleave", "checkerboard")


class Split(nn.Module):
    """Divides ``[batch, n]`` into the halves x, y (each ``[batch, n/2]``) and joins them back.

    Kinds:
        ``"half"``: x = first n/2 coordinates, y = the rest.
        ``"interleave"``: x = even coordinates, y = odd ones.
        ``"checkerboard"``: for an image-shaped prior (last two dims H, W, or a square n),
        x = pixels with (row + col) even, y = the others, suited to images.
    """

    def __init__(self, shape: Sequence[int], kind: str = "half") -> None:
        super().__init__()
        shape = list(shape)
        n = math.prod(shape)
        if n % 2:
            raise ValueError(
                f"a coupling splits the input into two halves of n/2, so n must be even; "
                f"the prior's shape {shape} has n = {n}"
            )
        if kind not in SPLITS:
            raise ValueError(f"unknown split {kind!r}; valid: {', '.join(SPLITS)}")
        self.kind, self.n, self.half = kind, n, n // 2
        if kind == "half":
            order = torch.arange(n, device="cpu")
        elif kind == "interleave":
            order = torch.cat([torch.arange(0, n, 2, device="cpu"), torch.arange(1, n, 2, device="cpu")])
        else:
            order = torch.cat(_checkerboard_halves(shape))
        # x = input[:, order[:n/2]], y = input[:, order[n/2:]]; join applies the inverse order.
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("unorder", torch.argsort(order), persistent=False)

    def split(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """``[batch, n]`` -> ``(x, y)``, each ``[batch, n/2]``."""
        if self.kind != "half":
            v = v.index_select(1, self.order)
        return v[:, : self.half], v[:, self.half :]

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        """``(x, y)`` -> ``[batch, n]``, the inverse of :meth:`split`."""
        v = torch.cat([x, y], 1)
        return v if self.kind == "half" else v.index_select(1, self.unorder)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, n={self.n}"


def _checkerboard_halves(shape: list[int]) -> tuple[Tensor, Tensor]:
    if len(shape) >= 2:
        rows, cols = shape[-2], shape[-1]
    elif math.isqrt(shape[0]) ** 2 == shape[0]:
        rows = cols = math.isqrt(shape[0])
    else:
        raise ValueError(
            f"a checkerboard split needs an image-shaped prior such as Gaussian([28, 28]) or a "
            f"square n; got shape {shape}. Use split='half' or 'interleave'."
        )
    r = torch.arange(rows, device="cpu").view(-1, 1)
    c = torch.arange(cols, device="cpu").view(1, -1)
    parity = ((r + c) % 2).flatten().repeat(math.prod(shape) // (rows * cols))
    if int((parity == 0).sum()) * 2 != parity.numel():
        raise ValueError(
            f"a checkerboard split of shape {shape} gives unequal halves; use split='half' or 'interleave'"
        )
    index = torch.arange(parity.numel(), device="cpu")
    return index[parity == 0], index[parity == 1]


class TanhBound(nn.Module):
    """Bounds a raw log-scale: s = c * tanh(raw), c a learned per-coordinate factor (starts at 1).

    Keeps exp(s) within [exp(-c), exp(c)] so one bad step cannot blow up the scale.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.ones(n))

    def forward(self, raw: Tensor) -> Tensor:
        return self.factor * torch.tanh(raw)


class Coupling(Bijection):
    """Changes one half of the input, conditioned on the other, which passes through unchanged.

    This base class owns the split and the join; subclasses give the element-wise map
    ``_map(a, b) -> (a', log|det|)`` of the changed half ``a`` given the conditioning half ``b``,
    and its inverse ``_unmap``. ``changes="x"`` is the seed's f0, ``changes="y"`` is f1.
    """

    def __init__(self, split: Split, changes: str) -> None:
        super().__init__()
        if changes not in ("x", "y"):
            raise ValueError(f"changes must be 'x' (the seed's f0) or 'y' (f1), got {changes!r}")
        self.split, self.changes = split, changes

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x, y = self.split.split(z)
        if self.changes == "x":
            x, log_abs_det = self._map(x, y)
        else:
            y, log_abs_det = self._map(y, x)
        return self.split.join(x, y), log_abs_det

    def inverse(self, v: Tensor) -> tuple[Tensor, Tensor]:
        x, y = self.split.split(v)
        if self.changes == "x":
            x, log_abs_det = self._unmap(x, y)
        else:
            y, log_abs_det = self._unmap(y, x)
        return self.split.join(x, y), log_abs_det

    def _map(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _unmap(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class AdditiveCoupling(Coupling):
    """NICE's additive coupling: a' = a + t(b); log|det| = 0 (volume preserving).

    ``t`` is the seed's v (for f0) or u (for f1). Dinh et al. 2014, https://arxiv.org/abs/1410.8516.
    """

    def __init__(self, split: Split, changes: str, shift: nn.Module) -> None:
        super().__init__(split, changes)
        self.shift = shift
        self.label = "f0: x <- x + v(y)" if changes == "x" else "f1: y <- y + u(x)"

    def _map(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return a + self.shift(b), a.new_zeros(len(a))

    def _unmap(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return a - self.shift(b), a.new_zeros(len(a))


class AffineCoupling(Coupling):
    """RealNVP's affine coupling: a' = exp(s(b)) * a + t(b); log|det| = sum_i s_i(b).

    ``t`` is the seed's v or u, ``s = bound(scale(b))`` with ``scale`` the seed's sv or su. With
    ``bound=None`` s is the net's output, exactly the seed's formula; the default
    :class:`TanhBound` keeps |s| <= c. Dinh et al. 2016, https://arxiv.org/abs/1605.08803.
    """

    def __init__(
        self, split: Split, changes: str, shift: nn.Module, scale: nn.Module, bound: nn.Module | None = None
    ) -> None:
        super().__init__(split, changes)
        self.shift, self.scale, self.bound = shift, scale, bound
        self.label = "f0: x <- exp(sv(y)) * x + v(y)" if changes == "x" else "f1: y <- exp(su(x)) * y + u(x)"

    def log_scale(self, b: Tensor) -> Tensor:
        """s(b), the (bounded) log-scale of the changed half."""
        raw = self.scale(b)
        return raw if self.bound is None else self.bound(raw)

    def _map(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_scale(b)
        return torch.exp(s) * a + self.shift(b), _sum_log_scale(s, a)

    def _unmap(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_scale(b)
        return (a - self.shift(b)) * torch.exp(-s), -_sum_log_scale(s, a)


def _sum_log_scale(s: Tensor, a: Tensor) -> Tensor:
    """sum_i s_i per row, accumulated in the wider of s's and a's dtypes (float32 under bf16 autocast)."""
    return s.sum(1, dtype=torch.promote_types(s.dtype, a.dtype))
