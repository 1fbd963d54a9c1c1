"""The Model page's parts: parsing the seed's MLP spec, parameter counts, a forward pass, real source code."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from flows import MLP, AdditiveCoupling, AffineCoupling, Coupling, Dense, RealNVP, limits
from flows.nn import ACTIVATIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_ACTIVATION = ("none", "linear")  # spellings of "no activation" (identity) besides "identity"


@dataclass(frozen=True)
class Preset:
    """One of the seed's example MLPs."""

    sizes: str
    activations: str
    story: str


#: The seed's two GAN-shaped examples ("2828" in the seed is 28 x 28 = 784).
PRESETS: dict[str, Preset] = {
    "Discriminator 784 → 50 → 1": Preset(
        "784, 50, 1",
        "relu, sigmoid",
        "Reads a 28×28 image and outputs one number in (0, 1): in a GAN, the probability that the image is "
        "real. Untrained, it says about 0.5 for everything.",
    ),
    "Generator 1 → 10 → 784": Preset(
        "1, 10, 784",
        "relu, sigmoid",
        "Maps one random number to a 28×28 image with pixels in (0, 1). Untrained, it draws grey noise; a "
        "GAN trains it to fool the discriminator.",
    ),
}


def parse_layer_sizes(text: str) -> list[int]:
    """``"784, 50, 1"`` -> ``[784, 50, 1]``; ValueError saying which entry is wrong and what to write."""
    entries = [entry.strip() for entry in text.replace(";", ",").split(",")]
    if not any(entries):
        raise ValueError("type the layer sizes separated by commas, input first, e.g. 784, 50, 1")
    sizes = []
    for position, entry in enumerate(entries, start=1):
        if not entry:
            raise ValueError(f"size {position} is empty: remove the extra comma in {text!r}")
        if not entry.isdigit() or int(entry) < 1:
            raise ValueError(
                f"size {position} is {entry!r}, not a positive whole number; write sizes like 784, 50, 1"
            )
        sizes.append(int(entry))
    if len(sizes) < 2:
        raise ValueError(
            f"an MLP needs at least an input and an output size, got only {sizes[0]}; e.g. 784, 50, 1"
        )
    if max(sizes) > 100_000:
        raise ValueError(f"layer sizes up to 100,000 keep this page responsive; got {max(sizes):,}")
    return sizes


def parse_activations(text: str, layers: int) -> list[str | None]:
    """``"relu, sigmoid"`` -> one activation per layer (``None`` for none/identity/linear).

    A single name is used for every layer. ValueError names the bad entry and lists the valid names.
    """
    valid = ", ".join([*sorted(ACTIVATIONS), *NO_ACTIVATION])
    names = [name.strip().lower() for name in text.replace(";", ",").split(",") if name.strip()]
    if not names:
        raise ValueError(f"type one activation per layer ({layers}), e.g. relu, sigmoid; valid: {valid}")
    for name in names:
        if name not in ACTIVATIONS and name not in NO_ACTIVATION:
            raise ValueError(f"unknown activation {name!r}; valid names: {valid}")
    if len(names) == 1:
        names = names * layers
    if len(names) != layers:
        raise ValueError(
            f"{layers} layer{'s' if layers > 1 else ''} need{'s' if layers == 1 else ''} {layers} "
            f"activation{'s' if layers > 1 else ''} (one per layer), got {len(names)}: {', '.join(names)}"
        )
    return [None if name in NO_ACTIVATION else name for name in names]


def build_mlp(sizes: list[int], activations: list[str | None], seed: int = 0) -> MLP:
    """The seed's MLP with seeded weights (torch's global random state is left as it was).

    MemoryLimitError (a ValueError) before allocating when its weights would exceed the memory limit.
    """
    estimate = limits.estimate_training_memory(lambda: MLP(sizes, activations), copies=1)
    limits.check_fits(estimate, f"an MLP of sizes {', '.join(map(str, sizes))}", "use smaller layers")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MLP(sizes, activations)


def parameter_table(mlp: MLP, activations: list[str | None]) -> pd.DataFrame:
    """One row per layer y = activation(x W + b): the shapes of W and b and its parameter count."""
    dense = [m for m in mlp.net if isinstance(m, Dense)]
    rows = [
        {
            "layer": f"{i + 1}: {layer.in_features} → {layer.out_features}",
            "W": f"[{layer.in_features}, {layer.out_features}]",
            "b": f"[{layer.out_features}]",
            "activation": activation or "none",
            "parameters": layer.weight.numel() + layer.bias.numel(),
        }
        for i, (layer, activation) in enumerate(zip(dense, activations, strict=True))
    ]
    total = sum(p.numel() for p in mlp.parameters())
    rows.append({"layer": "total", "W": "", "b": "", "activation": "", "parameters": total})
    return pd.DataFrame(rows)


def mlp_input(size: int, digit: Tensor | None, value: float, seed: int) -> tuple[Tensor, str]:
    """The input for a forward pass ``[1, size]`` and a phrase saying what it is.

    784 inputs take the digit (pixels / 255) when there is one; 1 input takes ``value``; other
    sizes a seeded N(0, I) vector.
    """
    if size == 784 and digit is not None:
        return digit.reshape(1, 784).float() / 255, "a real MNIST test digit, pixels scaled to [0, 1]"
    if size == 1:
        return torch.tensor([[value]]), f"the number {value:g}"
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, size, generator=generator), f"a random vector of {size} numbers from N(0, 1)"


def pixels(image: Tensor, zoom: int = 6) -> np.ndarray:
    """A 28 x 28 image (uint8, or floats in [0, 1]) as uint8 pixels enlarged ``zoom`` times, kept crisp."""
    values = image.detach().reshape(28, 28)
    if values.dtype != torch.uint8:
        values = (values.clamp(0, 1) * 255).round().to(torch.uint8)
    return np.kron(values.numpy(), np.ones((zoom, zoom), dtype=np.uint8))


def forward(mlp: MLP, x: Tensor) -> Tensor:
    """The MLP's output ``[1, out]`` without gradients."""
    with torch.no_grad():
        return mlp(x)


# --- the real source of the coupling layers ---------------------------------------------------------------

#: What the page shows, in teaching order.
SOURCES: dict[str, Callable | type] = {
    "Coupling (split, join, f0/f1)": Coupling,
    "AdditiveCoupling (NICE)": AdditiveCoupling,
    "AffineCoupling (RealNVP)": AffineCoupling,
    "RealNVP (the model)": RealNVP,
}


@dataclass
class Source:
    """The source code of an object and where it lives."""

    code: str
    path: str  # relative to the repository
    first_line: int


def source_of(obj: Callable | type) -> Source:
    """The real source of ``obj`` with ``inspect.getsource``, its file and first line number."""
    code = inspect.getsource(obj)
    first_line = inspect.getsourcelines(obj)[1]
    path = Path(inspect.getsourcefile(obj) or "").resolve()
    try:
        shown = str(path.relative_to(REPO_ROOT))
    except ValueError:
        shown = str(path)
    return Source(code, shown, first_line)
