"""Property tests over every bijection, in float64: inverse, log-det against autograd, gradients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from flows import (
    MLP,
    AdditiveCoupling,
    AffineCoupling,
    Bijection,
    Logit,
    Scaling,
    Split,
    TanhBound,
)
from flows.jacobian import layer_jacobian

N = 8
SHAPE = [2, 4]  # n = 8, image-shaped so the checkerboard split applies


def _net(half: int) -> MLP:
    return MLP([half, 16, half], ["tanh", None])


def _randomise(module: nn.Module) -> nn.Module:
    """Moves every parameter away from its identity-like start, so no term can hide at zero."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.5)
    return module


LAYERS: dict[str, Callable[[], Bijection]] = {
    "additive-f0-half": lambda: AdditiveCoupling(Split(SHAPE, "half"), "x", _net(4)),
    "additive-f1-interleave": lambda: AdditiveCoupling(Split(SHAPE, "interleave"), "y", _net(4)),
    "affine-f0-checkerboard": lambda: AffineCoupling(
        Split(SHAPE, "checkerboard"), "x", _net(4), _net(4), TanhBound(4)
    ),
    "affine-f1-half": lambda: AffineCoupling(Split(SHAPE, "half"), "y", _net(4), _net(4), TanhBound(4)),
    "affine-unbounded": lambda: AffineCoupling(Split(SHAPE, "interleave"), "y", _net(4), _net(4), None),
    "scaling": lambda: Scaling(N),
    "logit": lambda: Logit(0.05),
}


@pytest.fixture(params=sorted(LAYERS))
def layer(request: pytest.FixtureRequest) -> Bijection:
    return _randomise(LAYERS[request.param]()).double()


def _latent(layer: Bijection, batch: int = 5) -> torch.Tensor:
    return torch.randn(batch, N, dtype=torch.float64)


def test_round_trip(layer: Bijection) -> None:
    z = _latent(layer)
    x, _ = layer(z)
    z_back, _ = layer.inverse(x)
    assert torch.allclose(z_back, z, atol=1e-9, rtol=0)
    assert not torch.allclose(x, z), "the layer should not be the identity after randomising"


def test_log_det_matches_autograd_forward_and_inverse(layer: Bijection) -> None:
    z = _latent(layer)
    x, log_det = layer(z)
    _, inverse_log_det = layer.inverse(x)
    assert log_det.shape == (len(z),) and inverse_log_det.shape == (len(z),)
    for i in range(len(z)):
        expected = torch.linalg.slogdet(layer_jacobian(layer, z[i]))[1]
        assert torch.allclose(log_det[i], expected, atol=1e-9), (log_det[i], expected)
        inverse_jacobian = torch.func.jacrev(lambda v: layer.inverse(v[None])[0][0])(x[i])
        assert torch.allclose(inverse_log_det[i], torch.linalg.slogdet(inverse_jacobian)[1], atol=1e-9)


def test_gradients_reach_every_parameter(layer: Bijection) -> None:
    z = _latent(layer).requires_grad_()
    x, log_det = layer(z)
    (x.square().sum() + log_det.sum()).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


@pytest.mark.parametrize("changes", ["x", "y"])
def test_coupling_jacobian_is_block_triangular(changes: str) -> None:
    layer = _randomise(AffineCoupling(Split([N], "half"), changes, _net(4), _net(4), TanhBound(4))).double()
    jac = layer_jacobian(layer, torch.randn(N, dtype=torch.float64))
    x_rows, y_rows = slice(0, 4), slice(4, 8)
    kept, changed = (y_rows, x_rows) if changes == "x" else (x_rows, y_rows)
    # the conditioning half passes through: identity on its rows
    assert torch.equal(jac[kept, kept], torch.eye(4, dtype=torch.float64))
    assert torch.equal(jac[kept, changed], torch.zeros(4, 4, dtype=torch.float64))
    # the changed half: diagonal exp(s), and a dense off-diagonal block that the determinant ignores
    diagonal_block = jac[changed, changed]
    assert torch.equal(diagonal_block, torch.diag(torch.diagonal(diagonal_block)))
    assert jac[changed, kept].abs().min() > 0


def test_split_join_round_trip_and_halves() -> None:
    v = torch.arange(16.0).reshape(1, 16)
    for kind in ("half", "interleave", "checkerboard"):
        split = Split([4, 4], kind)
        x, y = split.split(v)
        assert x.shape == y.shape == (1, 8)
        assert torch.equal(split.join(x, y), v)
    x, _ = Split([4, 4], "checkerboard").split(v)
    assert x[0].tolist() == [0, 2, 5, 7, 8, 10, 13, 15]  # (row + col) even
    x, _ = Split([16], "interleave").split(v)
    assert x[0].tolist() == list(range(0, 16, 2))
