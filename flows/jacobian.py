"""Jacobian tools: analytic log|det| of each layer beside the autograd value, in float64."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .bijection import Bijection
from .couplings import Coupling
from .image.models import ImageFlow
from .models import Flow


def jacobian(function: Callable[[Tensor], Tensor], h: Tensor) -> Tensor:
    """Jacobian ``[n, n]`` of a map on ``[batch, n]`` at one point ``h [n]``."""
    return torch.func.jacrev(lambda v: function(v.unsqueeze(0)).squeeze(0))(h)


def layer_jacobian(layer: Bijection, h: Tensor) -> Tensor:
    """The Jacobian of ``layer.forward`` at one point ``h [n]``; a coupling's is block-triangular."""
    return jacobian(lambda v: layer(v)[0], h)


def coupling_jacobian_xy(layer: Coupling, h: Tensor) -> Tensor:
    """A coupling's Jacobian at ``h [n]`` with rows and columns in (x, y) order: ``[n, n]``.

    Entry ``[i, j]`` is d output_i / d input_j with the coordinates of the half x first, then y,
    whatever the split. In this order the seed's f0 (``changes="x"``) is block upper-triangular
    and f1 (``changes="y"``) block lower-triangular; reordering changes no determinant.
    """
    if not isinstance(layer, Coupling):
        raise ValueError(f"expected a coupling layer (f0 or f1), got {type(layer).__name__}")
    order = layer.split.order
    return layer_jacobian(layer, h)[order][:, order]


def autograd_log_abs_det(function: Callable[[Tensor], Tensor], h: Tensor) -> Tensor:
    """log|det J| at each row of ``h [batch, n]`` from the autograd Jacobian and ``slogdet``: ``[batch]``."""
    return torch.stack([torch.linalg.slogdet(jacobian(function, row))[1] for row in h]).detach()


@dataclass
class LogDetRow:
    """One layer's forward log|det| at each point of a batch, two ways."""

    name: str
    analytic: Tensor  # [batch]
    autograd: Tensor  # [batch]

    @property
    def abs_error(self) -> Tensor:
        return (self.analytic - self.autograd).abs()


@dataclass
class LogDetReport:
    """Per-layer rows, the whole flow's row (``total``) and how long each method took."""

    rows: list[LogDetRow]
    total: LogDetRow
    analytic_seconds: float
    autograd_seconds: float

    @property
    def max_abs_error(self) -> float:
        return max(float(r.abs_error.max()) for r in [*self.rows, self.total])


def check_log_dets(model: Flow, x: Tensor, labels: int | Tensor | None = None) -> LogDetReport:
    """Compares each layer's analytic forward log|det| with autograd, in float64.

    ``x [batch, *shape]`` are data points; they are mapped to the latent space, then pushed
    forward layer by layer. The ``total`` row compares the sum with ``slogdet`` of the Jacobian
    of the whole flow. The model is copied to float64; the original is left untouched. For an
    :class:`~flows.image.ImageFlow` every leaf layer (actnorm, 1x1 convolution, coupling, squeeze,
    factor-out, ...) gets its row, checked at its own input shape; ``labels`` are a conditional
    model's classes.
    """
    if isinstance(model, ImageFlow):
        return _check_image_log_dets(model, x, labels)
    model = copy.deepcopy(model).double().eval()
    _warm_up_autograd()
    with torch.no_grad():
        z, _ = model.inverse(x.double())
        h0 = z.reshape(len(z), -1)
        _push(model, h0)  # untimed: the first forward pass pays one-time kernel setup

    start = time.perf_counter()
    with torch.no_grad():
        h, analytic, total = h0, [], h0.new_zeros(len(h0))
        for layer in model.layers:
            h, log_abs_det = layer(h)
            analytic.append(log_abs_det)
            total = total + log_abs_det
    analytic_seconds = time.perf_counter() - start

    start = time.perf_counter()
    rows, h = [], h0
    for i, (layer, values) in enumerate(zip(model.layers, analytic, strict=True)):
        autograd = autograd_log_abs_det(lambda v, layer=layer: layer(v)[0], h)
        rows.append(LogDetRow(f"{i}: {layer.label or type(layer).__name__}", values, autograd))
        with torch.no_grad():
            h = layer(h)[0]
    whole = autograd_log_abs_det(lambda v: _push(model, v), h0)
    autograd_seconds = time.perf_counter() - start
    return LogDetReport(rows, LogDetRow("whole flow", total, whole), analytic_seconds, autograd_seconds)


@functools.cache
def _warm_up_autograd() -> None:
    """Runs torch.func once (its first call costs seconds of setup), so timings measure only the work."""
    jacobian(lambda v: 2 * v, torch.zeros(2, dtype=torch.float64))


def _push(model: Flow, h: Tensor) -> Tensor:
    for layer in model.layers:
        h = layer(h)[0]
    return h


def _check_image_log_dets(model: ImageFlow, x: Tensor, labels: int | Tensor | None) -> LogDetReport:
    model = copy.deepcopy(model).double().eval()
    _warm_up_autograd()
    with torch.no_grad():
        z, _ = model.inverse(x.double(), labels)
        context = model._context(labels, z)
        model.forward(z, labels)  # untimed warm-up

    start = time.perf_counter()
    with torch.no_grad():
        steps = [
            (name, layer, h, model._step(layer, h, context, inverse=False)[1])
            for name, layer, h in model.leaves(z, labels)
        ]
        total = model.forward(z, labels)[1]
    analytic_seconds = time.perf_counter() - start

    def per_row(function: Callable[[Tensor, int], Tensor], h: Tensor) -> Tensor:
        shape = h.shape[1:]
        values = [
            torch.linalg.slogdet(
                torch.func.jacrev(lambda v, i=i: function(v.view(1, *shape), i).reshape(-1))(h[i].reshape(-1))
            )[1]
            for i in range(len(h))
        ]
        return torch.stack(values).detach()

    def row_context(i: int) -> Tensor | None:
        return None if context is None else context[i : i + 1]

    start = time.perf_counter()
    rows = [
        LogDetRow(
            name,
            analytic,
            per_row(lambda v, i, layer=layer: model._step(layer, v, row_context(i), inverse=False)[0], h),
        )
        for name, layer, h, analytic in steps
    ]
    row_labels = (lambda i: labels) if not isinstance(labels, Tensor) else (lambda i: labels[i : i + 1])
    whole = per_row(lambda v, i: model.forward(v, row_labels(i))[0], z)
    autograd_seconds = time.perf_counter() - start
    return LogDetReport(rows, LogDetRow("whole flow", total, whole), analytic_seconds, autograd_seconds)
