"""The table of flow families: every consumer (trainer, CLI, dashboard pages, playground) reads it.

Adding a family is one :func:`register` call beside its class; an unknown name is a ValueError listing
the valid ones, never a silent default. A family's ``builder(prior, **options)`` returns the
:class:`flows.models.Flow`; ``options`` names the :class:`flows.training.TrainConfig` fields it reads,
passed as keyword arguments of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .image.models import build_conv_realnvp, build_glow
from .models import NICE, Flow, RealNVP
from .priors import Prior

#: The kinds of data a family can suit: 28 x 28 images (MNIST, Fashion-MNIST) and 2D toy densities.
DATA_KINDS = ("image", "toy")
#: TrainConfig fields the seed's coupling flows read.
COUPLING_OPTIONS = ("hidden", "blocks", "activation", "split")


@dataclass(frozen=True)
class FlowFamily:
    """One entry of the table: how to build a family of flows and what it suits."""

    name: str  # the config's ``model`` value, e.g. "realnvp"
    builder: Callable[..., Flow]  # builder(prior, **{option: value}) -> Flow
    label: str  # shown in the UI as "Title (detail)", e.g. "RealNVP (affine)"
    options: tuple[str, ...] = COUPLING_OPTIONS  # TrainConfig fields passed to the builder
    data_kinds: tuple[str, ...] = DATA_KINDS  # which of DATA_KINDS it suits
    description: str = ""  # one sentence for help texts
    image_shaped: bool = False  # True: built on a [1, 28, 28] prior (convolutional); False: on [n]
    #: True: its couplings keep volume (log|det| = 0) and only a final scaling layer changes it (NICE)
    volume_preserving: bool = False
    #: TrainConfig values that suit the family, by device kind ("cpu", "gpu"), chosen by measurement
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def preset(self, device_kind: str) -> dict[str, Any]:
        """The preset for ``device_kind`` ("cpu" or "gpu"; the CPU one where no GPU one is given)."""
        return dict(self.presets.get(device_kind) or self.presets.get("cpu") or {})

    @property
    def title(self) -> str:
        """The label without its detail in parentheses: "RealNVP"."""
        return self.label.split(" (")[0]

    def build(self, prior: Prior, **options: Any) -> Flow:
        """The flow for ``prior``, with the options this family reads (others are ignored)."""
        return self.builder(prior, **{name: options[name] for name in self.options if name in options})

    def summary(self, config: Any) -> str:
        """The options of ``config`` this family reads, as text: "levels 2 · steps_per_level 4 · ..."."""
        parts = []
        for name in self.options:
            value = getattr(config, name)
            if isinstance(value, bool):
                if value:
                    parts.append(name)
                continue
            parts.append(f"{name} {', '.join(map(str, value)) if isinstance(value, list) else value}")
        return " · ".join(parts)

    def suits(self, data_kind: str) -> bool:
        """True if the family trains on ``data_kind`` ("image" or "toy")."""
        return data_kind in self.data_kinds


_FAMILIES: dict[str, FlowFamily] = {}


def register(family: FlowFamily, *, replace: bool = False) -> FlowFamily:
    """Adds ``family`` to the table; ValueError if its name is taken (unless ``replace``) or malformed."""
    if not family.name or not family.name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"a family name needs letters, digits, '-' or '_', got {family.name!r}")
    unknown_kinds = [kind for kind in family.data_kinds if kind not in DATA_KINDS]
    if unknown_kinds or not family.data_kinds:
        raise ValueError(f"data_kinds must be a non-empty subset of {DATA_KINDS}, got {family.data_kinds}")
    if family.name in _FAMILIES and not replace:
        raise ValueError(f"a flow family named {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Removes a family (tests that registered a toy one clean up with this)."""
    get_family(name)
    del _FAMILIES[name]


@contextmanager
def registered(family: FlowFamily) -> Iterator[FlowFamily]:
    """Registers ``family`` for the duration of a ``with`` block."""
    register(family)
    try:
        yield family
    finally:
        _FAMILIES.pop(family.name, None)


def get_family(name: str) -> FlowFamily:
    """The family called ``name``; ValueError listing the valid names otherwise."""
    family = _FAMILIES.get(name)
    if family is None:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_FAMILIES)}")
    return family


def families(data_kind: str | None = None) -> list[FlowFamily]:
    """Every registered family in registration order, or those suiting ``data_kind``."""
    return [f for f in _FAMILIES.values() if data_kind is None or f.suits(data_kind)]


def family_names(data_kind: str | None = None) -> tuple[str, ...]:
    """The names of :func:`families`."""
    return tuple(f.name for f in families(data_kind))


register(
    FlowFamily(
        "realnvp",
        RealNVP,
        "RealNVP (affine)",
        description="affine couplings, y ← exp(s(x))·y + t(x), can stretch and squeeze",
        # bench/PRESETS.md, 30 minutes on one core, MNIST 9,000 / 1,000: 2.062 held-out bits/dim at the end
        # (also its lowest); shifts of 1 px 2.155 (lowest 2.098); the defaults alone overfit to 15.6
        presets={"cpu": {"ema_decay": 0.999, "augment_shift": 2}},
    )
)
register(
    FlowFamily(
        "nice",
        NICE,
        "NICE (additive)",
        description="additive couplings, y ← y + t(x), keep areas; one final scaling",
        volume_preserving=True,
        # bench/PRESETS.md, 10 minutes on one core, MNIST 9,000 / 1,000: 3.921 held-out bits/dim at the end
        # (also its lowest), the defaults 4.385
        presets={"cpu": {"ema_decay": 0.999, "augment_shift": 2}},
    )
)

#: TrainConfig fields the image flows read.
IMAGE_OPTIONS = ("levels", "steps_per_level", "hidden_channels", "conditional")
register(
    FlowFamily(
        "conv-realnvp",
        build_conv_realnvp,
        "ConvRealNVP (multi-scale)",
        options=(*IMAGE_OPTIONS, "residual_blocks"),
        data_kinds=("image",),
        description="Dinh et al. 2016: checkerboard and channel conv couplings, squeeze, factor out",
        image_shaped=True,
        presets={
            "cpu": {
                "levels": 2,
                "steps_per_level": 2,
                "hidden_channels": 32,
                "residual_blocks": 0,
                "amp": True,
                "lr": 2e-3,  # bench/PRESETS.md: 1.881 held-out bits/dim in 2 minutes, 1e-3 1.943
            },
            "gpu": {"levels": 2, "steps_per_level": 4, "hidden_channels": 64, "residual_blocks": 2},
        },
    )
)
register(
    FlowFamily(
        "glow",
        build_glow,
        "Glow (multi-scale)",
        options=IMAGE_OPTIONS,
        data_kinds=("image",),
        description="Kingma and Dhariwal 2018: actnorm, invertible 1x1 conv, affine coupling, per scale",
        image_shaped=True,
        presets={
            # bench/PRESETS.md: lr 2e-3 reached 1.956 held-out bits/dim in 2 minutes, 1e-3 2.103
            "cpu": {"levels": 2, "steps_per_level": 4, "hidden_channels": 64, "amp": True, "lr": 2e-3},
            "gpu": {"levels": 3, "steps_per_level": 8, "hidden_channels": 128, "batch_size": 256},
        },
    )
)
