"""One input followed through a flow, data -> latent, layer by layer (leaf by leaf for image flows).

``trace(model, x)`` returns the steps of ``model.inverse(x)``: each layer's output and log|det|, and for
the MLP couplings the half that changes, the half that conditions, the log-scale s and the shift t.
By the change of variables, ``prior.logProbability(z) + sum(step.log_abs_det)`` is
``model.logProbability(x)``; :func:`check` returns both and their difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .bijection import Bijection
from .couplings import AdditiveCoupling, AffineCoupling
from .image.base import ImageBijection
from .image.models import ImageFlow
from .image.multiscale import OnChannels, Sequential
from .models import Flow


@dataclass
class Step:
    """One layer's inverse: name, input, output, log|det dF^-1| ``[batch]``; coupling parts in ``parts``."""

    name: str
    layer: Bijection
    input: Tensor
    output: Tensor
    log_abs_det: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)  # "changed", "conditioning", "log_scale", "shift"


def _coupling_parts(layer: Bijection, h: Tensor) -> dict[str, Tensor]:
    """For an MLP coupling on ``h [batch, n]``: the changed half a, conditioning half b, s(b) and t(b)."""
    if not isinstance(layer, (AffineCoupling, AdditiveCoupling)):
        return {}
    x, y = layer.split.split(h)
    changed, conditioning = (x, y) if layer.changes == "x" else (y, x)
    parts = {"changed": changed, "conditioning": conditioning, "shift": layer.shift(conditioning)}
    if isinstance(layer, AffineCoupling):
        parts["log_scale"] = layer.log_scale(conditioning)
    else:
        parts["log_scale"] = torch.zeros_like(changed)
    return parts


def _image_steps(
    layer: ImageBijection, x: Tensor, context: Tensor | None, path: str, steps: list[Step]
) -> Tensor:
    """Inverts ``layer`` on ``x`` leaf by leaf, appending a :class:`Step` per leaf; returns the output."""
    if isinstance(layer, Sequential):
        for index in reversed(range(len(layer.layers))):
            x = _image_steps(layer.layers[index], x, context, f"{path}{index}.", steps)
        return x
    if isinstance(layer, OnChannels):
        head = _image_steps(layer.inner, x[:, : layer.channels], context, path, steps)
        return torch.cat([head, x[:, layer.channels :]], 1)
    out, log_abs_det = layer.inverse(x, context)
    size = "x".join(map(str, x.shape[1:]))
    name = f"{path.rstrip('.')}: {layer.label or type(layer).__name__} on {size}"
    steps.append(Step(name, layer, x, out, log_abs_det))
    return out


@torch.no_grad()
def trace(model: Flow, x: Tensor, labels: int | Tensor | None = None) -> list[Step]:
    """The steps of ``model.inverse(x)`` in order (data -> latent); the last step's output is z."""
    model._flatten(x)  # checks the shape, with the model's own message
    steps: list[Step] = []
    if isinstance(model, ImageFlow):
        context = model._context(labels, x)
        h = x
        for index in reversed(range(len(model.layers))):
            layer = model.layers[index]
            if isinstance(layer, ImageBijection):
                h = _image_steps(layer, h, context, f"{index}.", steps)
            else:
                out, log_abs_det = layer.inverse(h.reshape(len(h), -1))
                name = f"{index}: {layer.label or type(layer).__name__}"
                steps.append(Step(name, layer, h, out.reshape(h.shape), log_abs_det))
                h = out.reshape(h.shape)
        return steps
    if labels is not None:
        raise ValueError("this model is not class-conditional: leave labels out")
    h = x.reshape(len(x), -1)
    for index in reversed(range(len(model.layers))):
        layer = model.layers[index]
        parts = _coupling_parts(layer, h)
        out, log_abs_det = layer.inverse(h)
        name = f"{index}: {getattr(layer, 'label', '') or type(layer).__name__}"
        steps.append(Step(name, layer, h.reshape(x.shape), out.reshape(x.shape), log_abs_det, parts))
        h = out
    return steps


@dataclass
class Check:
    """The trace's sum beside ``logProbability``, per sample ``[batch]``."""

    log_dets: Tensor  # sum of the steps' log|det dF^-1|
    prior: Tensor  # log p_prior(z)
    total: Tensor  # log_dets + prior
    log_probability: Tensor  # model.logProbability(x)
    difference: Tensor  # total - log_probability


@torch.no_grad()
def check(model: Flow, x: Tensor, steps: list[Step], labels: int | Tensor | None = None) -> Check:
    """Adds up ``steps`` (from :func:`trace` of ``x``) and compares with ``model.logProbability(x)``."""
    log_dets = x.new_zeros(len(x))
    for step in steps:
        log_dets = log_dets + step.log_abs_det
    z = steps[-1].output if steps else x
    prior = model.prior.logProbability(z)
    args = (x, labels) if isinstance(model, ImageFlow) else (x,)
    log_probability = model.logProbability(*args)
    total = log_dets + prior
    return Check(log_dets, prior, total, log_probability, total - log_probability)


@torch.no_grad()
def way_back(model: Flow, z: Tensor, labels: int | Tensor | None = None) -> list[tuple[str, Tensor]]:
    """latent -> data for ``z``: ``(layer name, output)`` after each top-level layer, in forward order."""
    model._flatten(z)
    context = model._context(labels, z) if isinstance(model, ImageFlow) else None
    shown: list[tuple[str, Tensor]] = []
    h = z
    for index, layer in enumerate(model.layers):
        if isinstance(model, ImageFlow):
            h = model._step(layer, h, context, inverse=False)[0]
        else:
            h = layer(h.reshape(len(h), -1))[0].reshape(z.shape)
        shown.append((f"{index}: {getattr(layer, 'label', '') or type(layer).__name__}", h))
    return shown
