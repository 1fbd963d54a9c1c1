"""The Train page's names for things: dataset and flow-family labels, and a badge per run state."""

from __future__ import annotations

from flows import registry
from flows.data.toy import TOY_DATASETS

DATASET_LABELS = {
    "mnist": "MNIST digits",
    "fashion-mnist": "Fashion-MNIST",
    **{name: f"2D toy: {name}" for name in TOY_DATASETS},
}


def model_label(name: str) -> str:
    """The registry's label of a flow family, e.g. "RealNVP (affine)" (the name if it is not registered)."""
    try:
        return registry.get_family(name).label
    except ValueError:
        return name


STATE_BADGES = {
    "queued": ":gray-badge[queued]",
    "running": ":green-badge[running]",
    "pausing": ":orange-badge[pausing…]",
    "paused": ":orange-badge[paused]",
    "stopping": ":orange-badge[stopping…]",
    "done": ":blue-badge[done]",
    "stopped": ":gray-badge[stopped]",
    "failed": ":red-badge[failed]",
    "interrupted": ":red-badge[interrupted]",
    "created": ":gray-badge[created]",
}
