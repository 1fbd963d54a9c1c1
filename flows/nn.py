"""Dense layers and the seed's multi-layer perceptron."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Union

import torch
from torch import Tensor, nn

ActivationSpec = Union[str, None, nn.Module, Callable[[Tensor], Tensor]]


class Sine(nn.Module):
    """sin(x), the periodic activation of SIREN (Sitzmann et al. 2020, https://arxiv.org/abs/2006.09661).

    Kept with the default :class:`Dense` initialisation (no SIREN frequency factor). A conditioner
    of a 2D flow often has to oscillate along its input (a line through a spiral crosses its arms at
    regular intervals), which sin learns in fewer steps than tanh or relu.
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


#: Activations known by name; each entry builds a fresh module.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "sin": Sine,
    "identity": nn.Identity,
}


class Lambda(nn.Module):
    """Wraps a plain callable, such as ``torch.sin``, as a module."""

    def __init__(self, function: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: Tensor) -> Tensor:
        return self.function(x)

    def extra_repr(self) -> str:
        return getattr(self.function, "__name__", repr(self.function))


def make_activation(spec: ActivationSpec) -> nn.Module:
    """Turns a name, ``None``, a module or a callable into an activation module."""
    if spec is None:
        return nn.Identity()
    if isinstance(spec, str):
        key = spec.lower()
        if key not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {spec!r}; valid names: {', '.join(sorted(ACTIVATIONS))}, "
                "or None, or pass an nn.Module or a callable"
            )
        return ACTIVATIONS[key]()
    if isinstance(spec, nn.Module):
        return spec
    if callable(spec):
        return Lambda(spec)
    raise ValueError(
        f"activation must be a name, None, an nn.Module or a callable, got {type(spec).__name__}"
    )


class Dense(nn.Module):
    """Affine layer y = x W + b with W of shape [in, out], as the seed writes it.

    Initialised like ``torch.nn.Linear``: W and b uniform in +-1/sqrt(in).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        # (B, in) @ (in, out) + (out,) -> (B, out)
        return torch.addmm(self.bias, x, self.weight)

    def zero_(self) -> Dense:
        """Sets W and b to zero, so the layer outputs zeros (used to start couplings at identity)."""
        with torch.no_grad():
            self.weight.zero_()
            self.bias.zero_()
        return self

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class MLP(nn.Module):
    """Multi-layer perceptron: per layer, y = activation(x W + b).

    Args:
        sizes: layer widths, input first, e.g. ``[784, 50, 1]``.
        activations: one per layer (``len(sizes) - 1`` of them): a name from
            :data:`ACTIVATIONS`, ``None`` for identity, an ``nn.Module`` or a callable.

    Shapes: input ``[batch, sizes[0]]`` -> output ``[batch, sizes[-1]]``.
    """

    def __init__(self, sizes: Sequence[int], activations: Sequence[ActivationSpec]) -> None:
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least two sizes (input and output), got {sizes}")
        bad = [s for s in sizes if not isinstance(s, int) or isinstance(s, bool) or s < 1]
        if bad:
            raise ValueError(f"layer sizes must be positive integers, got {sizes}")
        if isinstance(activations, (str, nn.Module)) or activations is None:
            raise ValueError(
                f"activations must be a list with one entry per layer ({len(sizes) - 1}), "
                f"got {activations!r}; e.g. {['relu'] * (len(sizes) - 2) + ['identity']}"
            )
        activations = list(activations)
        if len(activations) != len(sizes) - 1:
            raise ValueError(
                f"{len(sizes) - 1} layers ({sizes}) need {len(sizes) - 1} activations, "
                f"got {len(activations)}: {activations}; valid names: {', '.join(sorted(ACTIVATIONS))}"
            )
        self.sizes = sizes
        modules: list[nn.Module] = []
        for n_in, n_out, activation in zip(sizes[:-1], sizes[1:], activations, strict=True):
            modules.append(Dense(n_in, n_out))
            act = make_activation(activation)
            if not isinstance(act, nn.Identity):
                modules.append(act)
        self.net = nn.Sequential(*modules)

    @property
    def last(self) -> Dense:
        """The last affine layer."""
        return [m for m in self.net if isinstance(m, Dense)][-1]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(
                f"expected input of shape [batch, {self.sizes[0]}], got {list(x.shape)}"
                + ("; flatten images first" if x.dim() > 2 else "")
            )
        return self.net(x)
