"""What the trainer reports, as small typed records; listeners (CLI, run-folder logger, dashboard) read them.

Each event is a frozen dataclass with a ``kind`` (the name used in metrics.jsonl) and, where it is
logged, :meth:`record` giving the JSON line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every trainer event: the optimizer steps done so far and the seconds trained."""

    kind: ClassVar[str] = ""
    step: int
    elapsed: float

    def record(self) -> dict[str, Any]:
        """The event as a metrics.jsonl line (``kind`` first)."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class StartEvent(Event):
    """Training begins (or resumes) at ``step`` of ``steps``."""

    kind: ClassVar[str] = "start"
    steps: int


@dataclass(frozen=True)
class StepEvent(Event):
    """One optimizer step: loss in nats (-mean logProbability of the global batch) and its bits/dim."""

    kind: ClassVar[str] = "step"
    loss: float
    bits_per_dim: float | None  # None for the 2D toys, which are not pixels
    images_per_sec: float  # this step's throughput
    lr: float
    grad_norm: float
    seconds: float  # wall-clock seconds of this step

    def record(self) -> dict[str, Any]:
        line = super().record()
        line["train_bits_per_dim"] = line.pop("bits_per_dim")
        del line["seconds"]
        return line


@dataclass(frozen=True)
class NanEvent(Event):
    """A step rejected for a non-finite loss or gradient norm; the state was restored."""

    kind: ClassVar[str] = "nan"
    loss: float
    grad_norm: float
    lr: float  # the lowered learning rate
    restored_step: int
    nan_count: int
    message: str


@dataclass(frozen=True)
class EvalEvent(Event):
    """An evaluation over the whole test split; ``best`` when it is the lowest test loss so far."""

    kind: ClassVar[str] = "eval"
    test_loss: float
    test_bits_per_dim: float | None
    best: bool = False
    train_bits_per_dim: float | None = None  # mean training bits/dim of the steps since the last evaluation
    sample_score: dict[str, Any] | None = None  # flows.evaluation.SampleScore.to_dict() of fresh samples


@dataclass(frozen=True)
class OverfitEvent(Event):
    """Held-out bits/dim rose above its best while training bits/dim kept falling: the model overfits."""

    kind: ClassVar[str] = "overfit"
    test_bits_per_dim: float
    best_test_bits_per_dim: float
    best_step: int
    train_bits_per_dim: float
    best_train_bits_per_dim: float  # training bits/dim at the best evaluation
    message: str


@dataclass(frozen=True)
class CheckpointEvent(Event):
    """A checkpoint is due: ``which`` is "last" (periodic and final) or "best" (after a best eval)."""

    kind: ClassVar[str] = "checkpoint"
    which: str


@dataclass(frozen=True)
class DoneEvent(Event):
    """The run ended: ``reason`` is "finished", "stopped" (a stop request), "time" (the --minutes budget
    ran out) or "early stop" (no new best test loss for ``early_stop`` evaluations)."""

    kind: ClassVar[str] = "done"
    reason: str
    best_test_loss: float | None
    best_test_bits_per_dim: float | None


@dataclass(frozen=True)
class FailEvent(Event):
    """The run ended by an exception: ``state`` is "stopped" (KeyboardInterrupt) or "failed"."""

    kind: ClassVar[str] = "fail"
    state: str
    message: str


#: A listener: called in the training thread with each event; blocking in it pauses training.
Listener = Callable[[Event], None]
