"""coupling_jacobian_xy against the blocks derived in docs/jacobian.md, every split, float64."""

from __future__ import annotations

import pytest
import torch

from flows import MLP, AdditiveCoupling, AffineCoupling, Logit, Split, TanhBound
from flows.jacobian import coupling_jacobian_xy, jacobian

SHAPE = [4, 4]  # n = 16, image-shaped so the checkerboard split applies
HALF = 8


def _net() -> MLP:
    net = MLP([HALF, 12, HALF], ["tanh", None])
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.5)  # away from the zero start, so no term hides at 0
    return net.double()


def _coupling(kind: str, split: str, changes: str) -> AdditiveCoupling | AffineCoupling:
    halves = Split(SHAPE, split)
    if kind == "additive":
        return AdditiveCoupling(halves, changes, _net()).double()
    bound = TanhBound(HALF).double() if kind == "affine-bounded" else None
    if bound is not None:
        with torch.no_grad():
            bound.factor.uniform_(0.5, 1.5)
    return AffineCoupling(halves, changes, _net(), _net(), bound).double()


@pytest.mark.parametrize("split", ["half", "interleave", "checkerboard"])
@pytest.mark.parametrize("changes", ["x", "y"])
@pytest.mark.parametrize("kind", ["additive", "affine-bounded", "affine-raw"])
def test_blocks_match_the_derivation(kind: str, split: str, changes: str) -> None:
    layer = _coupling(kind, split, changes)
    h = torch.randn(16, dtype=torch.float64)
    matrix = coupling_jacobian_xy(layer, h)

    x, y = layer.split.split(h.unsqueeze(0))
    changed, condition = (x[0], y[0]) if changes == "x" else (y[0], x[0])
    k = HALF
    blocks = {"xx": matrix[:k, :k], "xy": matrix[:k, k:], "yx": matrix[k:, :k], "yy": matrix[k:, k:]}
    kept = "yy" if changes == "x" else "xx"
    zero = "yx" if changes == "x" else "xy"
    moved = "xx" if changes == "x" else "yy"
    off_diagonal = "xy" if changes == "x" else "yx"

    assert torch.equal(blocks[zero], torch.zeros(k, k, dtype=torch.float64))  # exactly: no dependence
    assert torch.equal(blocks[kept], torch.eye(k, dtype=torch.float64))

    shift = jacobian(layer.shift, condition)  # dv/dy (f0) or du/dx (f1)
    if kind == "additive":
        expected_diagonal = torch.ones(k, dtype=torch.float64)
        expected_off = shift
    else:
        s = layer.log_scale(condition.unsqueeze(0))[0]
        expected_diagonal = torch.exp(s)
        ds = jacobian(layer.log_scale, condition)  # through the tanh bound when there is one
        expected_off = torch.diag(changed * torch.exp(s)) @ ds + shift
    torch.testing.assert_close(blocks[moved], torch.diag(expected_diagonal), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(blocks[off_diagonal], expected_off, rtol=1e-10, atol=1e-12)
    assert blocks[off_diagonal].abs().max() > 1e-3, "the conditioner block is dense, not zero"

    log_abs_det = layer(h.unsqueeze(0))[1][0]
    torch.testing.assert_close(log_abs_det, torch.linalg.slogdet(matrix)[1], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(log_abs_det, expected_diagonal.log().sum(), rtol=1e-12, atol=1e-12)


def test_tanh_bound_chain_rule() -> None:
    bound = TanhBound(HALF).double()
    with torch.no_grad():
        bound.factor.uniform_(0.5, 1.5)
    raw = torch.randn(HALF, dtype=torch.float64)
    expected = torch.diag(bound.factor * (1 - torch.tanh(raw) ** 2))
    torch.testing.assert_close(jacobian(bound, raw), expected.detach(), rtol=1e-12, atol=1e-12)


def test_reordering_keeps_the_determinant() -> None:
    layer = _coupling("affine-bounded", "checkerboard", "x")
    h = torch.randn(16, dtype=torch.float64)
    in_pixel_order = jacobian(lambda v: layer(v)[0], h)
    torch.testing.assert_close(
        torch.linalg.slogdet(coupling_jacobian_xy(layer, h))[1], torch.linalg.slogdet(in_pixel_order)[1]
    )
    assert not torch.equal(in_pixel_order[:HALF, HALF:], coupling_jacobian_xy(layer, h)[:HALF, HALF:])


def test_only_couplings_have_halves() -> None:
    with pytest.raises(ValueError, match="expected a coupling layer"):
        coupling_jacobian_xy(Logit(), torch.rand(16, dtype=torch.float64))
