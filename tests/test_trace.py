"""The tour's trace: its log-dets plus the prior's log density add up to logProbability, in float64."""

from __future__ import annotations

import pytest
import torch

from flows import ConvRealNVP, Gaussian, Glow, RealNVP
from flows.bijection import Logit
from flows.trace import check, trace, way_back


def _perturb(model: torch.nn.Module) -> None:
    """Moves every parameter off its identity start, so each layer changes its input."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def _models() -> list[tuple[str, torch.nn.Module, list[int]]]:
    torch.manual_seed(0)
    mlp = RealNVP(Gaussian([16]), hidden=[8], blocks=2)
    mlp.layers.append(Logit(0.05))
    glow = Glow(Gaussian([1, 8, 8]), levels=2, steps=2, hidden_channels=8)
    conv = ConvRealNVP(Gaussian([1, 8, 8]), levels=2, steps=2, hidden_channels=8)
    conv.layers.append(Logit(0.05))
    return [("realnvp", mlp, [16]), ("glow", glow, [1, 8, 8]), ("conv-realnvp", conv, [1, 8, 8])]


@pytest.mark.parametrize("index", range(3))
def test_trace_adds_up_to_log_probability(index: int) -> None:
    name, model, shape = _models()[index]
    model = model.double()
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.9 + 0.05
    if name == "glow":
        model.logProbability(x)  # actnorm's data-dependent initialisation
    _perturb(model)
    steps = trace(model, x)
    result = check(model, x, steps)
    assert result.difference.abs().max() < 1e-10
    assert torch.allclose(steps[-1].output, model.inverse(x)[0], atol=1e-12)
    assert sum(step.log_abs_det.abs().sum() for step in steps) > 0.1  # the layers really do something
    if name != "realnvp":
        assert len(steps) > len(model.layers)  # leaf by leaf, not only top-level


def test_coupling_parts_rebuild_the_output() -> None:
    model = _models()[0][1].double()
    _perturb(model)
    x = torch.rand(2, 16, dtype=torch.float64) * 0.9 + 0.05
    couplings = [step for step in trace(model, x) if step.parts]
    assert len(couplings) == 4
    for step in couplings:
        p = step.parts
        unchanged = (p["changed"] - p["shift"]) * torch.exp(-p["log_scale"])
        assert torch.allclose(step.log_abs_det, -p["log_scale"].sum(1), atol=1e-12)
        x_half, y_half = step.layer.split.split(step.output.reshape(2, -1))
        assert torch.allclose(x_half if step.layer.changes == "x" else y_half, unchanged, atol=1e-12)


def test_way_back_ends_at_the_sample() -> None:
    model = _models()[1][1].double()
    z = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    model.logProbability(torch.rand(2, 1, 8, 8, dtype=torch.float64))
    shown = way_back(model, z)
    assert torch.allclose(shown[-1][1], model.forward(z)[0], atol=1e-12)
