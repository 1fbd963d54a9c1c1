"""Flow Lab's model library: MLPs, priors, NICE and RealNVP with exact log-densities."""

from .bijection import Bijection, Logit, Scaling
from .couplings import AdditiveCoupling, AffineCoupling, Coupling, Split, TanhBound
from .models import NICE, Flow, RealNVP
from .nn import MLP, Dense
from .priors import Gaussian, Logistic, Prior

__all__ = [
    "MLP",
    "NICE",
    "AdditiveCoupling",
    "AffineCoupling",
    "Bijection",
    "Coupling",
    "Dense",
    "Flow",
    "Gaussian",
    "Logistic",
    "Logit",
    "Prior",
    "RealNVP",
    "Scaling",
    "Split",
    "TanhBound",
]
