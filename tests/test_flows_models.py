"""NICE and RealNVP as distributions: exact densities, sampling, training, persistence, bad input."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from flows import MLP, NICE, Gaussian, Logistic, RealNVP
from flows.jacobian import check_log_dets

FLOWS = {
    "nice": lambda prior, **kw: NICE(prior, hidden=[16], blocks=2, **kw),
    "realnvp": lambda prior, **kw: RealNVP(prior, hidden=[16], blocks=2, **kw),
}


def _randomised(model: nn.Module, std: float = 0.3) -> nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, std)
    return model


@pytest.fixture(params=sorted(FLOWS))
def flow_name(request: pytest.FixtureRequest) -> str:
    return request.param


def _model(flow_name: str, shape: list[int] = [4, 2], prior=Gaussian, std: float = 0.3, **kw) -> nn.Module:  # noqa: B006
    return _randomised(FLOWS[flow_name](prior(shape), **kw), std).double()


@pytest.mark.parametrize("shape", [[8], [4, 2], [1, 2, 4]])
def test_round_trip_and_shapes(flow_name: str, shape: list[int]) -> None:
    model = _model(flow_name, shape)
    z = torch.randn(6, *shape, dtype=torch.float64)
    x, log_det = model.forward(z)
    z_back, inverse_log_det = model.inverse(x)
    assert x.shape == z.shape and log_det.shape == (6,) and inverse_log_det.shape == (6,)
    assert torch.allclose(z_back, z, atol=1e-9, rtol=0)
    assert torch.allclose(inverse_log_det, -log_det, atol=1e-9)
    assert model.sample(3).shape == (3, *shape)
    assert model.logProbability(x).shape == (6,)


@pytest.mark.parametrize("split", ["half", "interleave", "checkerboard"])
def test_log_prob_is_prior_plus_autograd_log_det(flow_name: str, split: str) -> None:
    model = _model(flow_name, [4, 2], split=split)
    x = torch.randn(4, 4, 2, dtype=torch.float64)
    z, _ = model.inverse(x)
    expected = []
    for i in range(len(x)):
        jac = torch.func.jacrev(lambda v: model.inverse(v.reshape(1, 4, 2))[0].reshape(-1))(x[i].reshape(-1))
        prior = torch.distributions.Normal(0.0, 1.0).log_prob(z[i]).sum()
        expected.append(prior + torch.linalg.slogdet(jac)[1])
    assert torch.allclose(model.logProbability(x), torch.stack(expected), atol=1e-9)


def test_logistic_prior_works_with_every_flow(flow_name: str) -> None:
    model = _model(flow_name, [8], prior=Logistic)
    x = torch.randn(5, 8, dtype=torch.float64)
    z, log_det = model.inverse(x)
    logistic = torch.distributions.TransformedDistribution(
        torch.distributions.Uniform(0.0, 1.0), [torch.distributions.transforms.SigmoidTransform().inv]
    )
    expected = logistic.log_prob(z).sum(1) + log_det
    assert torch.allclose(model.logProbability(x), expected, atol=1e-9)


def test_check_log_dets_agree_with_autograd(flow_name: str) -> None:
    model = _model(flow_name, [8])
    report = check_log_dets(model, torch.randn(3, 8))
    assert len(report.rows) == len(model.layers)
    assert report.max_abs_error < 1e-9
    assert report.total.analytic.abs().max() > 1e-3 or flow_name == "nice"


def test_density_integrates_to_one_in_2d(flow_name: str) -> None:
    model = _model(flow_name, [2], std=0.2)
    edge = torch.linspace(-10, 10, 801, dtype=torch.float64)
    step = float(edge[1] - edge[0])
    grid = torch.cartesian_prod(edge, edge)
    with torch.no_grad():
        mass = model.logProbability(grid).exp().sum() * step**2
    assert abs(float(mass) - 1) < 0.01, float(mass)


def test_samples_follow_the_density(flow_name: str) -> None:
    """Monte Carlo mass of a few regions from samples matches the density's integral over them."""
    model = _model(flow_name, [2], std=0.2)
    with torch.no_grad():
        samples = model.sample(200_000)
        edge = torch.linspace(-6, 6, 301, dtype=torch.float64)
        step = float(edge[1] - edge[0])
        centres = torch.cartesian_prod(edge[:-1] + step / 2, edge[:-1] + step / 2)
        density = model.logProbability(centres).exp()
    for region in [(-6.0, 0.0, -6.0, 0.0), (0.0, 6.0, -6.0, 6.0), (-1.0, 1.0, -1.0, 1.0)]:

        def inside(p: torch.Tensor, r: tuple[float, ...] = region) -> torch.Tensor:
            return (p[:, 0] >= r[0]) & (p[:, 0] < r[1]) & (p[:, 1] >= r[2]) & (p[:, 1] < r[3])

        integral = float(density[inside(centres)].sum() * step**2)
        frequency = float(inside(samples).double().mean())
        sigma = math.sqrt(max(integral * (1 - integral), 1e-4) / len(samples))
        assert abs(frequency - integral) < 5 * sigma + 0.005, (region, frequency, integral)


def test_sample_log_prob_consistency(flow_name: str) -> None:
    model = _model(flow_name, [8])
    z = model.prior.sample(7).double()
    x, log_det = model.forward(z)
    assert torch.allclose(model.logProbability(x), model.prior.logProbability(z) - log_det, atol=1e-9)


def test_gradients_reach_every_parameter(flow_name: str) -> None:
    model = _model(flow_name, [8])
    model.logProbability(torch.randn(16, 8, dtype=torch.float64)).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_fresh_model_starts_as_identity(flow_name: str) -> None:
    model = FLOWS[flow_name](Gaussian([8]))
    x = torch.randn(4, 8)
    z, log_det = model.inverse(x)
    assert torch.equal(z, x) and torch.equal(log_det, torch.zeros(4))


def test_state_dict_round_trip(flow_name: str) -> None:
    model = _model(flow_name, [8])
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = FLOWS[flow_name](Gaussian([8])).double()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(5, 8, dtype=torch.float64)
    assert torch.equal(fresh.logProbability(x), model.logProbability(x))


def test_learnable_gaussian_prior() -> None:
    prior = Gaussian([3], learnable=True).double()
    with torch.no_grad():
        prior.loc.copy_(torch.tensor([1.0, -2.0, 0.5]))
        prior.log_scale.copy_(torch.tensor([0.3, -0.1, 0.0]))
    x = torch.randn(4, 3, dtype=torch.float64)
    expected = torch.distributions.Normal(prior.loc, prior.log_scale.exp()).log_prob(x).sum(1)
    assert torch.allclose(prior.logProbability(x), expected, atol=1e-12)
    assert {n for n, _ in prior.named_parameters()} == {"loc", "log_scale"}
    samples = prior.sample(100_000)
    assert torch.allclose(samples.mean(0), prior.loc, atol=0.03)
    assert torch.allclose(samples.std(0), prior.log_scale.exp(), atol=0.03)


def test_seed_mlp_examples() -> None:
    discriminator = MLP([784, 50, 1], ["relu", "sigmoid"])
    generator = MLP([1, 10, 784], ["relu", "sigmoid"])
    x = torch.rand(3, 784)
    score = discriminator(x)
    assert score.shape == (3, 1) and ((score > 0) & (score < 1)).all()
    assert generator(torch.randn(5, 1)).shape == (5, 784)
    first, second = discriminator.net[0], discriminator.net[2]
    assert first.weight.shape == (784, 50)  # W in [in, out], as the seed writes it
    expected = torch.sigmoid(torch.relu(x @ first.weight + first.bias) @ second.weight + second.bias)
    assert torch.allclose(score, expected)
    assert sum(p.numel() for p in discriminator.parameters()) == 784 * 50 + 50 + 50 + 1


def test_mlp_accepts_modules_and_callables() -> None:
    net = MLP([2, 3, 2], [nn.Tanh(), torch.sin]).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    first, second = net.net[0], net.net[2]
    expected = torch.sin(torch.tanh(x @ first.weight + first.bias) @ second.weight + second.bias)
    assert torch.allclose(net(x), expected)


def test_sin_activation_by_name() -> None:
    net = MLP([1, 8, 2], ["sin", None]).double()
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    first, second = net.net[0], net.net[2]
    assert torch.allclose(net(x), torch.sin(x @ first.weight + first.bias) @ second.weight + second.bias)
    model = _randomised(RealNVP(Gaussian([2]), hidden=[8], blocks=2, activation="sin")).double()
    assert check_log_dets(model, torch.randn(16, 2, dtype=torch.float64)).max_abs_error < 1e-9


def test_maximum_likelihood_on_two_moons_beats_a_gaussian_fit() -> None:
    from flows.data.toy import make_toy

    torch.manual_seed(0)
    data = make_toy("moons", 2000, seed=0)
    train, test = data[:1500], data[1500:]
    mean, cov = train.mean(0), torch.cov(train.T)
    gaussian_nll = -torch.distributions.MultivariateNormal(mean, cov).log_prob(test).mean()
    model = RealNVP(Gaussian([2]), hidden=[64, 64], blocks=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(600):
        batch = train[torch.randint(len(train), (256,))]
        loss = -model.logProbability(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        flow_nll = -model.logProbability(test).mean()
    assert flow_nll < gaussian_nll - 0.4, (float(flow_nll), float(gaussian_nll))


BAD_INPUTS = [
    (lambda: RealNVP(Gaussian([7])), "n must be even"),
    (lambda: NICE(Gaussian([3, 3])), "n must be even"),
    (lambda: RealNVP(Gaussian([6]), split="diagonal"), "unknown split"),
    (lambda: RealNVP(Gaussian([10]), split="checkerboard"), "image-shaped"),
    (lambda: RealNVP(Gaussian([8]), blocks=0), "blocks must be a positive integer"),
    (lambda: Gaussian([0, 3]), "positive integers"),
    (lambda: Gaussian([4]).sample(0), "batchSize must be a positive integer"),
    (lambda: Gaussian([4]).logProbability(torch.zeros(2, 5)), r"expected input of shape \[batch, 4\]"),
    (lambda: RealNVP(Gaussian([784])).logProbability(torch.zeros(2, 28, 28)), r"got \[2, 28, 28\]; reshape"),
    (lambda: NICE(Gaussian([4])).forward(torch.zeros(4)), r"expected input of shape \[batch, 4\]"),
    (lambda: MLP([784, 50, 1], ["relu"]), "need 2 activations"),
    (lambda: MLP([784, 50, 1], ["relu", "swish"]), "unknown activation 'swish'; valid names"),
    (lambda: MLP([784], []), "at least two sizes"),
    (lambda: MLP([784, 50, 1], "relu"), "one entry per layer"),
    (lambda: MLP([4, 2], [None])(torch.zeros(3, 5)), r"expected input of shape \[batch, 4\]"),
]


@pytest.mark.parametrize("make, message", BAD_INPUTS)
def test_bad_input_raises_a_clear_value_error(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
