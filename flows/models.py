"""Flows: a prior plus a list of bijections, and the seed's NICE and RealNVP."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .bijection import Bijection, Scaling
from .couplings import AdditiveCoupling, AffineCoupling, Split, TanhBound
from .nn import MLP, ActivationSpec
from .priors import Prior


class Flow(nn.Module):
    """A normalizing flow: data x = F(z) with z drawn from ``prior``.

    ``layers`` are applied in order by :meth:`forward` (latent -> data) and in reverse by
    :meth:`inverse`. By the change of variables,
    log p(x) = log p_prior(F^-1(x)) + log|det dF^-1/dx|.
    """

    def __init__(self, prior: Prior, layers: Sequence[Bijection]) -> None:
        super().__init__()
        self.prior = prior
        self.layers = nn.ModuleList(layers)

    @property
    def shape(self) -> list[int]:
        """The shape of one sample, the prior's."""
        return self.prior.shape

    def _flatten(self, v: Tensor) -> Tensor:
        """Checks ``[batch, *shape]`` and returns ``[batch, n]``."""
        if not isinstance(v, Tensor):
            raise ValueError(f"expected a torch.Tensor, got {type(v).__name__}")
        if list(v.shape[1:]) != self.shape or v.dim() < 2:
            expected = f"[batch, {', '.join(map(str, self.shape))}]"
            hint = ""
            if v.dim() >= 1 and v[0].numel() == self.prior.numel:
                hint = f"; reshape it with x.reshape(len(x), {', '.join(map(str, self.shape))})"
            raise ValueError(f"expected input of shape {expected}, got {list(v.shape)}{hint}")
        return v.reshape(len(v), -1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """latent -> data: ``z [batch, *shape]`` -> ``(x [batch, *shape], log|det dF/dz| [batch])``."""
        h = self._flatten(z)
        total = h.new_zeros(len(h))
        for layer in self.layers:
            h, log_abs_det = layer(h)
            total = total + log_abs_det
        return h.reshape(z.shape), total

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """data -> latent: ``x`` -> ``(z, log|det dF^-1/dx| [batch])``."""
        h = self._flatten(x)
        total = h.new_zeros(len(h))
        for layer in reversed(self.layers):
            h, log_abs_det = layer.inverse(h)
            total = total + log_abs_det
        return h.reshape(x.shape), total

    def logProbability(self, x: Tensor) -> Tensor:  # noqa: N802 (the seed's name)
        """Exact log density of each sample: ``[batch, *shape]`` -> ``[batch]``."""
        z, log_abs_det = self.inverse(x)
        return self.prior.logProbability(z) + log_abs_det

    def sample(self, batchSize: int) -> Tensor:  # noqa: N803 (the seed's name)
        """Draws ``[batchSize, *shape]`` from the transformed distribution: x = F(z), z ~ prior."""
        return self.forward(self.prior.sample(batchSize))[0]


def _conditioner(half: int, hidden: Sequence[int], activation: ActivationSpec) -> MLP:
    """An MLP R^(n/2) -> R^(n/2) whose last layer starts at zero (so its output starts at 0)."""
    hidden = list(hidden)
    net = MLP([half, *hidden, half], [activation] * len(hidden) + [None])
    net.last.zero_()
    return net


def _block_nets(
    flow: str,
    names: tuple[str, ...],
    half: int,
    hidden: Sequence[int],
    blocks: int,
    activation: ActivationSpec,
    nets: Sequence[tuple[nn.Module, ...]] | None,
) -> list[tuple[nn.Module, ...]]:
    """The conditioners of each block: the given ``nets``, each block checked to hold one net per name in
    ``names``, else ``blocks`` blocks of fresh zero-output MLPs R^half -> R^half."""
    if nets is None:
        if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 1:
            raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
        return [tuple(_conditioner(half, hidden, activation) for _ in names) for _ in range(blocks)]
    for block in nets:
        if len(block) != len(names):
            raise ValueError(f"{flow} needs ({', '.join(names)}) for each block, got {len(block)} nets")
    return list(nets)


class NICE(Flow):
    """NICE: K blocks of the seed's F = f0 o f1 with additive couplings, then a diagonal scaling.

    f0(x, y) = (x + v(y), y), f1(x, y) = (x, y + u(x)); each block has log|det| = 0, so the
    only volume change is the final :class:`Scaling` (``scaling=False`` leaves it out).
    Dinh et al. 2014, https://arxiv.org/abs/1410.8516.

    Args:
        prior: the distribution of z; its shape must have an even total size n.
        hidden: hidden widths of each conditioner MLP R^(n/2) -> R^(n/2).
        blocks: number K of blocks (2K couplings).
        activation: the hidden layers' activation.
        split: how the halves are chosen: "half", "interleave" or "checkerboard".
        nets: instead of ``hidden``, the nets themselves: one ``(v, u)`` pair per block.
    """

    def __init__(
        self,
        prior: Prior,
        hidden: Sequence[int] = (1000, 1000),
        blocks: int = 4,
        activation: ActivationSpec = "relu",
        split: str = "half",
        scaling: bool = True,
        nets: Sequence[tuple[nn.Module, nn.Module]] | None = None,
    ) -> None:
        halves = Split(prior.shape, split)
        layers: list[Bijection] = []
        for v, u in _block_nets("NICE", ("v", "u"), halves.half, hidden, blocks, activation, nets):
            layers += [AdditiveCoupling(halves, "y", u), AdditiveCoupling(halves, "x", v)]
        if scaling:
            layers.append(Scaling(halves.n))
        super().__init__(prior, layers)


class RealNVP(Flow):
    """RealNVP: K blocks of the seed's F = f0 o f1 with affine couplings.

    f0(x, y) = (exp(sv(y)) * x + v(y), y), f1(x, y) = (x, exp(su(x)) * y + u(x)); a block's
    log|det| is sum(su(x)) + sum(sv(y')). Log-scales are bounded, s = c * tanh(raw), with a
    learned per-coordinate c starting at 1 (``bound_scale=False`` uses the raw net output).
    Dinh et al. 2016, https://arxiv.org/abs/1605.08803.

    Args:
        prior: the distribution of z; its shape must have an even total size n.
        hidden: hidden widths of each of the four conditioner MLPs R^(n/2) -> R^(n/2).
        blocks: number K of blocks (2K couplings).
        activation: the hidden layers' activation.
        split: how the halves are chosen: "half", "interleave" or "checkerboard".
        nets: instead of ``hidden``, the nets themselves: one ``(v, u, sv, su)`` per block.
    """

    def __init__(
        self,
        prior: Prior,
        hidden: Sequence[int] = (1024, 1024),
        blocks: int = 4,
        activation: ActivationSpec = "relu",
        split: str = "half",
        bound_scale: bool = True,
        nets: Sequence[tuple[nn.Module, nn.Module, nn.Module, nn.Module]] | None = None,
    ) -> None:
        halves = Split(prior.shape, split)
        layers: list[Bijection] = []
        names = ("v", "u", "sv", "su")
        for v, u, sv, su in _block_nets("RealNVP", names, halves.half, hidden, blocks, activation, nets):
            bound_u = TanhBound(halves.half) if bound_scale else None
            bound_v = TanhBound(halves.half) if bound_scale else None
            # F = f0 o f1: f1 acts first on the way from latent to data.
            layers += [
                AffineCoupling(halves, "y", u, su, bound_u),
                AffineCoupling(halves, "x", v, sv, bound_v),
            ]
        super().__init__(prior, layers)
