"""Flow Lab's model library: MLPs, priors, NICE, RealNVP and image flows with exact log-densities."""

__version__ = "0.1.0"

from . import registry
from .bijection import Bijection, Logit, Scaling
from .couplings import AdditiveCoupling, AffineCoupling, Coupling, Split, TanhBound
from .image import ConvRealNVP, Glow, ImageFlow
from .models import NICE, Flow, RealNVP
from .nn import MLP, Dense
from .priors import Gaussian, Logistic, Prior

__all__ = [
    "MLP",
    "NICE",
    "AdditiveCoupling",
    "AffineCoupling",
    "Bijection",
    "ConvRealNVP",
    "Coupling",
    "Dense",
    "Flow",
    "Gaussian",
    "Glow",
    "ImageFlow",
    "Logistic",
    "Logit",
    "Prior",
    "RealNVP",
    "Scaling",
    "Split",
    "TanhBound",
    "registry",
]
