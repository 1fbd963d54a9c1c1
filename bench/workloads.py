"""The reference workload, built with Flow Lab, with plain PyTorch, and with each peer library.

Reference (issue 7): flattened 784-pixel inputs; RealNVP with 4 blocks = 8 affine couplings, each
changing one half of the input conditioned on the other, in turn, with a fixed first/second-half
split; separate shift and log-scale nets (the seed's v, u, sv, su), each an MLP 392 -> 1024 -> 1024
-> 392 with ReLU and a zero-initialised last layer; a standard Gaussian prior; Adam at lr 1e-3;
batch 128; float32. Each peer is configured as its own documentation shows; where it has no tanh
bound on the log-scale it keeps its own (see :data:`LOG_SCALE_OF`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

FEATURES = 784
HALF = FEATURES // 2
HIDDEN = (1024, 1024)
BLOCKS = 4
COUPLINGS = 2 * BLOCKS
LEARNING_RATE = 1e-3
BATCH_SIZE = 128

#: How each implementation bounds the log-scale s of its affine couplings.
LOG_SCALE_OF = {
    "flowlab": "s = c * tanh(raw), c learned per coordinate (starts at 1)",
    "plain": "s = c * tanh(raw), c learned per coordinate (starts at 1)",
    "normflows": "s = tanh(raw) (MLP output_fn='tanh'; normflows has no learned factor)",
    "nflows": "scale = sigmoid(raw + 2) + 1e-3 (fixed in nflows 0.14's AffineCouplingTransform)",
    "zuko": "s = raw / (1 + |raw| / 6.9) (zuko's MonotonicAffineTransform soft clip)",
}


@dataclass
class Workload:
    """One implementation of the reference workload, ready to train, sample and evaluate.

    ``log_prob(x)``: ``[batch, 784]`` -> ``[batch]`` log density (nats). ``loss(x)``: the scalar
    training loss, -mean log density, as the library's documentation computes it.
    """

    name: str
    library: str  # distribution name, for the version ("torch" for plain PyTorch)
    model: nn.Module
    optimizer: torch.optim.Optimizer
    log_prob: Callable[[Tensor], Tensor]
    sample: Callable[[int], Tensor]
    loss: Callable[[Tensor], Tensor] | None = None
    precision: str = "fp32"  # "fp32", or "bf16": the forward pass under bfloat16 autocast
    setup: list[str] = field(default_factory=list)  # what was done to make it fast, in words

    def training_loss(self, x: Tensor) -> Tensor:
        """The loss of one batch, in float32 (under bf16 autocast for ``precision="bf16"``)."""
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            loss = self.loss(x) if self.loss is not None else -self.log_prob(x).mean()
        return loss.float()

    def train_step(self, x: Tensor) -> Tensor:
        """One Adam step on the batch ``x``; returns the loss (detached)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.training_loss(x)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


def _zero_last_linear(net: nn.Module) -> nn.Module:
    """Zeroes the last linear layer of ``net`` so its output starts at 0 (couplings start as identity).

    A linear layer is any module with a 2-D ``weight`` and a ``bias`` parameter (zuko has its own class).
    """
    linear = [
        m
        for m in net.modules()
        if isinstance(getattr(m, "weight", None), nn.Parameter) and m.weight.dim() == 2 and m.bias is not None
    ]
    last = linear[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return net


# --- Flow Lab --------------------------------------------------------------------------------------


def build_flowlab(
    device: torch.device, hidden: Sequence[int], precision: str = "fp32", tuned: bool = True
) -> Workload:
    """Flow Lab's RealNVP as the library ships it, trained with flows.speed's settings.

    ``tuned=False`` keeps torch's default Adam and malloc (the ablation baseline).
    """
    from flows import Gaussian, RealNVP
    from flows.speed import bf16_status, make_adam, tune_malloc

    setup = []
    if tuned:
        setup.append("malloc tuned (mallopt)" if tune_malloc() else "malloc not tunable here")
    model = RealNVP(Gaussian([FEATURES]), hidden=list(hidden), blocks=BLOCKS).to(device)
    if tuned:
        optimizer = make_adam(model.parameters(), lr=LEARNING_RATE)
        setup.append("Adam(fused=True)" if optimizer.defaults.get("fused") else "Adam (fused unavailable)")
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        setup.append("default Adam")
    if precision == "bf16":
        setup.append("bf16 autocast: " + bf16_status(device)[1])
    return Workload(
        "flowlab",
        "flowlab",
        model,
        optimizer,
        model.logProbability,
        model.sample,
        precision=precision,
        setup=setup,
    )


# --- plain PyTorch, written the straightforward way -----------------------------------------------


def _plain_mlp(hidden: Sequence[int]) -> nn.Sequential:
    sizes = [HALF, *hidden, HALF]
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return _zero_last_linear(nn.Sequential(*layers[:-1]))


class PlainCoupling(nn.Module):
    """a' = exp(s(b)) * a + t(b) on one half, s = c * tanh(net(b)), written out by hand."""

    def __init__(self, hidden: Sequence[int], changes_first_half: bool) -> None:
        super().__init__()
        self.shift, self.scale = _plain_mlp(hidden), _plain_mlp(hidden)
        self.factor = nn.Parameter(torch.ones(HALF))
        self.changes_first_half = changes_first_half

    def _log_scale(self, b: Tensor) -> Tensor:
        return self.factor * torch.tanh(self.scale(b))

    def forward(self, z: Tensor) -> Tensor:
        first, second = z.chunk(2, dim=1)
        a, b = (first, second) if self.changes_first_half else (second, first)
        a = torch.exp(self._log_scale(b)) * a + self.shift(b)
        return torch.cat([a, b] if self.changes_first_half else [b, a], dim=1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        first, second = x.chunk(2, dim=1)
        a, b = (first, second) if self.changes_first_half else (second, first)
        s = self._log_scale(b)
        a = (a - self.shift(b)) * torch.exp(-s)
        return torch.cat([a, b] if self.changes_first_half else [b, a], dim=1), -s.sum(dim=1)


class PlainRealNVP(nn.Module):
    """8 :class:`PlainCoupling` layers, alternating halves, and a standard Gaussian prior."""

    def __init__(self, hidden: Sequence[int]) -> None:
        super().__init__()
        self.couplings = nn.ModuleList(PlainCoupling(hidden, i % 2 == 1) for i in range(COUPLINGS))

    def log_prob(self, x: Tensor) -> Tensor:
        total = x.new_zeros(len(x))
        for coupling in reversed(self.couplings):
            x, log_abs_det = coupling.inverse(x)
            total = total + log_abs_det
        return total - 0.5 * x.square().sum(dim=1) - 0.5 * FEATURES * math.log(2 * math.pi)

    def sample(self, n: int) -> Tensor:
        z = torch.randn(n, FEATURES, device=self.couplings[0].factor.device)
        for coupling in self.couplings:
            z = coupling(z)
        return z


def build_plain(device: torch.device, hidden: Sequence[int], fused: bool = False) -> Workload:
    """Plain PyTorch (nn.Linear, nn.ReLU, torch.optim.Adam), optionally with Adam(fused=True)."""
    model = PlainRealNVP(hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, fused=fused or None)
    setup = ["Adam(fused=True)" if fused else "default Adam"]
    return Workload("plain", "torch", model, optimizer, model.log_prob, model.sample, setup=setup)


# --- normflows 1.7.3 -------------------------------------------------------------------------------


def build_normflows(device: torch.device, hidden: Sequence[int]) -> Workload:
    """normflows: AffineCouplingBlock per coupling, a param_map holding separate shift and scale MLPs.

    normflows' AffineCoupling reads shift from the even and log-scale from the odd columns of its
    param_map's output; split_mode 'channel' / 'channel_inv' alternates which half is changed.
    """
    import normflows as nf

    class ShiftAndLogScale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            sizes = [HALF, *hidden, HALF]
            self.shift = nf.nets.MLP(sizes, init_zeros=True)
            self.scale = nf.nets.MLP(sizes, init_zeros=True, output_fn="tanh")

        def forward(self, z1: Tensor) -> Tensor:
            # (B, 392) x 2 -> (B, 392, 2) -> (B, 784): shift at even, log-scale at odd columns
            return torch.stack([self.shift(z1), self.scale(z1)], dim=2).flatten(1)

    flows = [
        nf.flows.AffineCouplingBlock(
            ShiftAndLogScale(), scale=True, scale_map="exp", split_mode="channel" if i % 2 else "channel_inv"
        )
        for i in range(COUPLINGS)
    ]
    model = nf.NormalizingFlow(q0=nf.distributions.DiagGaussian(FEATURES, trainable=False), flows=flows).to(
        device
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    return Workload(
        "normflows",
        "normflows",
        model,
        optimizer,
        model.log_prob,
        lambda n: model.sample(n)[0],
        loss=model.forward_kld,
        setup=["default Adam"],
    )


# --- nflows 0.14 -----------------------------------------------------------------------------------


def build_nflows(device: torch.device, hidden: Sequence[int]) -> Workload:
    """nflows: AffineCouplingTransform per coupling; its transform net holds separate shift and scale MLPs."""
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.nn.nets import MLP
    from nflows.transforms import AffineCouplingTransform, CompositeTransform

    class ShiftAndScale(nn.Module):
        def __init__(self, in_features: int, out_features: int) -> None:
            super().__init__()
            half = out_features // 2
            self.shift = _zero_last_linear(MLP((in_features,), (half,), list(hidden)))
            self.scale = _zero_last_linear(MLP((in_features,), (half,), list(hidden)))

        def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
            # nflows reads the shift from the first half of the output, the raw scale from the second
            return torch.cat([self.shift(x), self.scale(x)], dim=1)

    first_half = torch.arange(FEATURES) < HALF
    masks = [
        torch.where(first_half, 1, -1) if i % 2 == 0 else torch.where(first_half, -1, 1)
        for i in range(COUPLINGS)
    ]
    transform = CompositeTransform([AffineCouplingTransform(mask, ShiftAndScale) for mask in masks])
    model = Flow(transform, StandardNormal([FEATURES])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    return Workload(
        "nflows", "nflows", model, optimizer, model.log_prob, model.sample, setup=["default Adam"]
    )


# --- zuko 1.6.0 ------------------------------------------------------------------------------------


def build_zuko(device: torch.device, hidden: Sequence[int]) -> Workload:
    """zuko: a LazyTransform per coupling returning a CouplingTransform with separate shift and scale MLPs."""
    import zuko
    from zuko.distributions import DiagNormal
    from zuko.lazy import Flow, LazyTransform, UnconditionalDistribution
    from zuko.transforms import CouplingTransform, DependentTransform, MonotonicAffineTransform

    class SeparateNetsCoupling(LazyTransform):
        def __init__(self, mask: Tensor) -> None:
            super().__init__()
            self.register_buffer("mask", mask)  # True: the conditioning half x_a
            self.shift = _zero_last_linear(zuko.nn.MLP(HALF, HALF, hidden_features=list(hidden)))
            self.scale = _zero_last_linear(zuko.nn.MLP(HALF, HALF, hidden_features=list(hidden)))

        def meta(self, x_a: Tensor) -> DependentTransform:
            return DependentTransform(MonotonicAffineTransform(self.shift(x_a), self.scale(x_a)), 1)

        def forward(self, c: Tensor | None = None) -> CouplingTransform:
            return CouplingTransform(self.meta, self.mask)

    first_half = torch.arange(FEATURES) < HALF
    transforms = [SeparateNetsCoupling(first_half if i % 2 == 0 else ~first_half) for i in range(COUPLINGS)]
    base = UnconditionalDistribution(DiagNormal, torch.zeros(FEATURES), torch.ones(FEATURES), buffer=True)
    model = Flow(transforms, base).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    return Workload(
        "zuko",
        "zuko",
        model,
        optimizer,
        lambda x: model().log_prob(x),
        lambda n: model().sample((n,)),
        setup=["default Adam"],
    )


@dataclass(frozen=True)
class Implementation:
    """A named row of the benchmark: how to build it and what it stands for."""

    name: str
    library: str
    build: Callable[[torch.device, Sequence[int]], Workload]
    description: str
    same_architecture: bool = True  # part of the same-architecture fp32 comparison
    is_peer: bool = False


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in (
        Implementation("flowlab", "flowlab", build_flowlab, "Flow Lab RealNVP, fused Adam, malloc tuned"),
        Implementation(
            "flowlab-bf16",
            "flowlab",
            lambda device, hidden: build_flowlab(device, hidden, precision="bf16"),
            "Flow Lab RealNVP, bf16 autocast (log-dets, loss fp32)",
            same_architecture=False,
        ),
        Implementation(
            "flowlab-untuned",
            "flowlab",
            lambda device, hidden: build_flowlab(device, hidden, tuned=False),
            "Flow Lab RealNVP, default Adam and malloc (ablation)",
            same_architecture=False,
        ),
        Implementation(
            "flowlab-fused-only",
            "flowlab",
            lambda device, hidden: _fused_only(device, hidden),
            "Flow Lab RealNVP, fused Adam, default malloc (ablation)",
            same_architecture=False,
        ),
        Implementation("plain", "torch", build_plain, "plain PyTorch, straightforward", is_peer=True),
        Implementation(
            "plain-fused",
            "torch",
            lambda device, hidden: build_plain(device, hidden, fused=True),
            "plain PyTorch with Adam(fused=True)",
            same_architecture=False,
        ),
        Implementation(
            "normflows", "normflows", build_normflows, "normflows AffineCouplingBlock", is_peer=True
        ),
        Implementation("nflows", "nflows", build_nflows, "nflows AffineCouplingTransform", is_peer=True),
        Implementation("zuko", "zuko", build_zuko, "zuko CouplingTransform, separate nets", is_peer=True),
    )
}


def _fused_only(device: torch.device, hidden: Sequence[int]) -> Workload:
    workload = build_flowlab(device, hidden, tuned=False)
    from flows.speed import make_adam

    workload.optimizer = make_adam(workload.model.parameters(), lr=LEARNING_RATE)
    workload.setup = ["Adam(fused=True)", "default malloc"]
    return workload


def matmul_flops_per_image(hidden: Sequence[int] = HIDDEN) -> int:
    """Matrix-multiply FLOPs of one forward pass per image: 2 nets x 8 couplings x 2 sum(in * out)."""
    sizes = [HALF, *hidden, HALF]
    per_net = sum(n_in * n_out for n_in, n_out in itertools.pairwise(sizes))
    return 2 * COUPLINGS * 2 * per_net


def training_flops_per_image(hidden: Sequence[int] = HIDDEN) -> int:
    """Forward plus backward (twice the forward): about 0.18 GFLOP per image for the reference."""
    return 3 * matmul_flops_per_image(hidden)
