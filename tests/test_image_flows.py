"""Image flows in float64: every layer and whole models against autograd, labels, state, errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from flows import Gaussian, Logit
from flows.image import (
    ActNorm,
    ChannelCoupling,
    CheckerboardCoupling,
    ClassAffine,
    ConvRealNVP,
    FactorOut,
    Glow,
    ImageBijection,
    ImageFlow,
    InvertibleConv1x1,
    LatentAffine,
    Squeeze,
    Unsqueeze,
)
from flows.image.models import build_conv_realnvp, build_glow, grid_labels
from flows.image.multiscale import scales
from flows.jacobian import check_log_dets

CLASSES = 3


def _randomise(module: nn.Module, scale: float = 0.3) -> nn.Module:
    """Moves every parameter away from its identity-like start, so no term can hide at zero."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)
    return module


# name -> (builder, input shape [C, H, W], conditional)
LAYERS: dict[str, tuple[Callable[[], ImageBijection], list[int], bool]] = {
    "squeeze-1x4x4": (Squeeze, [1, 4, 4], False),
    "unsqueeze-4x2x2": (Unsqueeze, [4, 2, 2], False),
    "actnorm-2x4x4": (lambda: ActNorm(2), [2, 4, 4], False),
    "conv1x1-lu-4x2x2": (lambda: InvertibleConv1x1(4, lu=True), [4, 2, 2], False),
    "conv1x1-plain-2x8x8": (lambda: InvertibleConv1x1(2, lu=False), [2, 8, 8], False),
    "checkerboard-even-1x4x4": (lambda: CheckerboardCoupling(1, 4, 4, 0, 8), [1, 4, 4], False),
    "checkerboard-odd-2x4x4": (
        lambda: CheckerboardCoupling(2, 4, 4, 1, 8, residual_blocks=0),
        [2, 4, 4],
        False,
    ),
    "channel-4x2x2": (lambda: ChannelCoupling(4, 8), [4, 2, 2], False),
    "channel-flip-3x4x4": (lambda: ChannelCoupling(3, 8, flip=True, residual_blocks=1), [3, 4, 4], False),
    "factor-out-4x2x2": (lambda: FactorOut(4, 8), [4, 2, 2], False),
    "channel-conditional-2x4x4": (lambda: ChannelCoupling(2, 8, context=CLASSES), [2, 4, 4], True),
    "checkerboard-conditional-1x4x4": (
        lambda: CheckerboardCoupling(1, 4, 4, 0, 8, context=CLASSES),
        [1, 4, 4],
        True,
    ),
    "class-affine-1x4x4": (lambda: ClassAffine([1, 4, 4], CLASSES), [1, 4, 4], True),
    "latent-affine-2x4x4": (lambda: LatentAffine([2, 4, 4]), [2, 4, 4], False),
}


@pytest.fixture(params=sorted(LAYERS))
def case(request: pytest.FixtureRequest) -> tuple[ImageBijection, torch.Tensor, torch.Tensor | None]:
    build, shape, conditional = LAYERS[request.param]
    layer = _randomise(build()).double().eval()  # eval: actnorm keeps its randomised values
    z = torch.randn(3, *shape, dtype=torch.float64)
    context = None
    if conditional:
        context = nn.functional.one_hot(torch.tensor([0, 2, 1]), CLASSES).double()
    return layer, z, context


def _jacobian(function: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    shape = h.shape
    return torch.func.jacrev(lambda v: function(v.view(1, *shape)).reshape(-1))(h.reshape(-1))


def test_round_trip(case) -> None:
    layer, z, context = case
    x, _ = layer(z, context)
    z_back, _ = layer.inverse(x, context)
    assert torch.allclose(z_back, z, atol=1e-9, rtol=0)
    if not isinstance(layer, (Squeeze, Unsqueeze)):
        assert not torch.allclose(x, z), "the layer should not be the identity after randomising"


def test_log_det_matches_autograd_forward_and_inverse(case) -> None:
    layer, z, context = case
    x, log_det = layer(z, context)
    _, inverse_log_det = layer.inverse(x, context)
    assert log_det.shape == (len(z),) and inverse_log_det.shape == (len(z),)
    for i in range(len(z)):
        row = None if context is None else context[i : i + 1]
        forward = _jacobian(lambda v, row=row: layer(v, row)[0], z[i])
        inverse = _jacobian(lambda v, row=row: layer.inverse(v, row)[0], x[i])
        assert torch.allclose(log_det[i], torch.linalg.slogdet(forward)[1], atol=1e-9)
        assert torch.allclose(inverse_log_det[i], torch.linalg.slogdet(inverse)[1], atol=1e-9)


def test_gradients_reach_every_parameter(case) -> None:
    layer, z, context = case
    z = z.clone().requires_grad_()
    x, log_det = layer(z, context)
    (x.square().sum() + log_det.sum()).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_squeeze_moves_each_patch_into_channels() -> None:
    h = torch.arange(16.0).view(1, 1, 4, 4)
    squeezed, log_det = Squeeze()(h)
    assert squeezed.shape == (1, 4, 2, 2) and log_det.item() == 0
    assert squeezed[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left 2x2 patch


def test_actnorm_initialises_from_data_and_the_flag_survives_a_reload() -> None:
    layer = ActNorm(2)
    x = torch.randn(64, 2, 4, 4) * torch.tensor([3.0, 0.5]).view(1, 2, 1, 1) + 2
    z, _ = layer.inverse(x)  # training mode: the first call initialises
    assert bool(layer.initialized)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z.std((0, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)
    reloaded = ActNorm(2)
    reloaded.load_state_dict(layer.state_dict())
    assert bool(reloaded.initialized)
    reloaded.inverse(torch.randn(8, 2, 4, 4))  # another batch must not re-initialise it
    assert torch.equal(reloaded.bias, layer.bias) and torch.equal(reloaded.log_scale, layer.log_scale)


def test_actnorm_in_eval_mode_does_not_initialise() -> None:
    layer = ActNorm(1).eval()
    layer.inverse(torch.randn(4, 1, 2, 2) + 5)
    assert not bool(layer.initialized) and torch.equal(layer.bias, torch.zeros_like(layer.bias))


MODELS: dict[str, Callable[[list[int]], ImageFlow]] = {
    "conv-realnvp": lambda shape: ConvRealNVP(Gaussian(shape), levels=2, steps=2, hidden_channels=8),
    "glow": lambda shape: Glow(Gaussian(shape), levels=2, steps=2, hidden_channels=8),
    "glow-plain-conv": lambda shape: Glow(Gaussian(shape), levels=2, steps=1, hidden_channels=8, lu=False),
    "glow-conditional": lambda shape: Glow(
        Gaussian(shape), levels=2, steps=2, hidden_channels=8, num_classes=CLASSES
    ),
    "conv-realnvp-conditional": lambda shape: ConvRealNVP(
        Gaussian(shape), levels=1, steps=2, hidden_channels=8, num_classes=CLASSES
    ),
}


def _model(name: str, shape: list[int]) -> tuple[ImageFlow, torch.Tensor | None]:
    model = _randomise(MODELS[name](shape), scale=0.1).double()
    model.layers.append(Logit(0.05))
    labels = torch.tensor([0, 2]) if model.conditional else None
    return model, labels


@pytest.mark.parametrize("shape", [[1, 4, 4], [1, 8, 8], [2, 8, 8]], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_whole_model_log_det_and_every_leaf_match_autograd(name: str, shape: list[int]) -> None:
    model, labels = _model(name, shape)
    x = torch.rand(2, *shape, dtype=torch.float64) * 0.9 + 0.05
    report = check_log_dets(model, x, labels)
    assert len(report.rows) >= 6
    for row in report.rows:  # each leaf's Jacobian is small and well conditioned
        assert float(row.abs_error.max()) < 1e-9, (row.name, float(row.abs_error.max()))
    # The whole flow's determinant is a product of many scales (e^-100 and less): slogdet of that
    # ill-conditioned matrix is accurate to about 1e-9 relative, not absolute.
    whole = report.total
    assert (whole.abs_error <= 1e-9 * (1 + whole.autograd.abs())).all(), whole.abs_error
    kinds = " ".join(row.name for row in report.rows)
    assert "squeeze" in kinds and "coupling" in kinds and "actnorm" in kinds
    if name.startswith("glow"):
        assert "1x1 conv" in kinds
    # log p(x) = log p_prior(z) + log|det dz/dx|, and the round trip is exact
    z, log_det = model.inverse(x, labels)
    assert z.shape == x.shape
    assert torch.allclose(model.logProbability(x, labels), model.prior.logProbability(z) + log_det)
    x_back, forward_log_det = model.forward(z, labels)
    assert torch.allclose(x_back, x, atol=1e-9) and torch.allclose(forward_log_det, -log_det, atol=1e-9)


@pytest.mark.parametrize("name", ["glow-conditional", "conv-realnvp-conditional"])
def test_conditional_density_depends_on_the_label(name: str) -> None:
    model, _ = _model(name, [1, 4, 4])
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    densities = torch.stack([model.logProbability(x, labels=k) for k in range(CLASSES)])  # (K, B)
    assert (densities[1:] - densities[0]).abs().min() > 1e-6, "the label should change the density"
    for k in range(CLASSES):  # each label's density: prior of its latent plus its log-det
        z, log_det = model.inverse(x, torch.full((2,), k))
        assert torch.allclose(densities[k], model.prior.logProbability(z) + log_det)
    samples = model.sample(5, labels=1)
    assert samples.shape == (5, 1, 4, 4)


def test_gradients_reach_every_parameter_of_a_model() -> None:
    model, _ = _model("glow-conditional", [1, 8, 8])
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64) * 0.9 + 0.05
    (-model.logProbability(x, torch.tensor([0, 1, 2, 0])).mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reaches {missing}"


def test_state_dict_round_trip_keeps_densities_and_actnorm_initialised() -> None:
    torch.manual_seed(1)
    model = Glow(Gaussian([1, 8, 8]), levels=2, steps=2, hidden_channels=8)
    x = torch.rand(16, 1, 8, 8)
    model.train()
    model.logProbability(x)  # initialises every actnorm from this batch
    state = model.state_dict()
    flags = [k for k in state if k.endswith("initialized")]
    assert len(flags) == 4 and all(bool(state[k]) for k in flags)  # 2 levels x 2 steps
    torch.manual_seed(2)
    reloaded = Glow(Gaussian([1, 8, 8]), levels=2, steps=2, hidden_channels=8)
    reloaded.load_state_dict(state)
    reloaded.train()
    other = torch.rand(16, 1, 8, 8)
    assert torch.allclose(reloaded.logProbability(other), model.logProbability(other))


def test_shapes_scale_by_scale_on_mnist() -> None:
    model = Glow(Gaussian([1, 28, 28]), levels=3, steps=1, hidden_channels=4)
    sizes = [name.rsplit(" on ", 1)[1] for name, _, _ in model.leaves(torch.zeros(1, 1, 28, 28))]
    assert "4x14x14" in sizes and "8x7x7" in sizes
    assert "4x7x7" in sizes, "a 7x7 level does not squeeze: it keeps its size"
    assert model.sample(2).shape == (2, 1, 28, 28)


def test_bad_shapes_and_labels_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"image-shaped prior \[C, H, W\]"):
        Glow(Gaussian([784]))
    with pytest.raises(ValueError, match="cannot squeeze"):
        Glow(Gaussian([1, 7, 7]), levels=1, steps=1, hidden_channels=4)
    with pytest.raises(ValueError, match="levels must be a positive integer"):
        Glow(Gaussian([1, 8, 8]), levels=0)
    model = Glow(Gaussian([1, 8, 8]), levels=2, steps=1, hidden_channels=4)
    with pytest.raises(ValueError, match=r"expected input of shape \[batch, 1, 8, 8\]"):
        model.logProbability(torch.rand(2, 64))
    with pytest.raises(ValueError, match="not class-conditional"):
        model.logProbability(torch.rand(2, 1, 8, 8), labels=1)
    conditional = Glow(Gaussian([1, 8, 8]), levels=2, steps=1, hidden_channels=4, num_classes=10)
    with pytest.raises(ValueError, match=r"class-conditional \(10 classes\): pass labels"):
        conditional.sample(2)
    with pytest.raises(ValueError, match=r"labels must lie in 0..9"):
        conditional.sample(2, labels=10)
    with pytest.raises(ValueError, match=r"\[2\] tensor of integer class indices"):
        conditional.logProbability(torch.rand(2, 1, 8, 8), labels=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\[2\] tensor"):
        conditional.logProbability(torch.rand(2, 1, 8, 8), labels=torch.tensor([1, 2, 3]))


def test_scales_report_shapes_and_parameters_level_by_level() -> None:
    model = Glow(Gaussian([1, 28, 28]), levels=3, steps=2, hidden_channels=8)
    table = scales(model)
    assert [s.input_shape for s in table] == [[1, 28, 28], [2, 14, 14], [4, 7, 7]]
    assert [s.squeezed_shape for s in table] == [[4, 14, 14], [8, 7, 7], [4, 7, 7]]
    assert [s.factored_shape for s in table] == [[2, 14, 14], [4, 7, 7], None]
    top = sum(p.numel() for p in model.layers[0].parameters())  # the learned top prior: m and s
    assert top == 2 * 28 * 28
    assert sum(s.parameters for s in table) + top == sum(p.numel() for p in model.parameters())
    # every coordinate ends up somewhere: factored out at some level or kept to the last
    kept = math.prod(table[-1].squeezed_shape)
    assert kept + sum(math.prod(s.factored_shape) for s in table[:-1]) == 28 * 28


def test_registry_builders_read_config_names() -> None:
    glow = build_glow(Gaussian([1, 8, 8]), levels=2, steps_per_level=1, hidden_channels=4, conditional=True)
    assert isinstance(glow, Glow) and glow.num_classes == 10 and glow.steps == 1
    crnvp = build_conv_realnvp(Gaussian([1, 8, 8]), levels=1, steps_per_level=2, hidden_channels=4)
    assert isinstance(crnvp, ConvRealNVP) and not crnvp.conditional
    assert grid_labels(glow, 12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert grid_labels(crnvp, 4) is None
