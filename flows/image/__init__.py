"""Image flows: multi-scale convolutional RealNVP and Glow, optionally class-conditional."""

from .actnorm import ActNorm
from .base import ImageBijection, Squeeze, Unsqueeze
from .conditioning import ClassAffine, LatentAffine
from .conv1x1 import InvertibleConv1x1
from .couplings import ChannelCoupling, CheckerboardCoupling, ConvNet
from .models import ConvRealNVP, Glow, ImageFlow
from .multiscale import FactorOut

__all__ = [
    "ActNorm",
    "ChannelCoupling",
    "CheckerboardCoupling",
    "ClassAffine",
    "ConvNet",
    "ConvRealNVP",
    "FactorOut",
    "Glow",
    "ImageBijection",
    "ImageFlow",
    "InvertibleConv1x1",
    "LatentAffine",
    "Squeeze",
    "Unsqueeze",
]
