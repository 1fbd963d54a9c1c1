"""What the training command prints: the progress bar, evaluation lines, and one-line messages."""

from __future__ import annotations

import re

from flows.registry import get_family
from flows.training import EvalEvent, Event, NanEvent, OverfitEvent, StepEvent, Trainer


class Progress:
    """tqdm bar of steps with loss, bits/dim, images/s (and tqdm's ETA); prints evaluations and warnings."""

    def __init__(self, total: int | None, initial: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", disable=not enabled, dynamic_ncols=True)
        self.enabled = enabled
        self.images_per_sec: float | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepEvent):
            rate = event.images_per_sec
            self.images_per_sec = (
                rate if self.images_per_sec is None else 0.9 * self.images_per_sec + 0.1 * rate
            )
            postfix = {"loss": f"{event.loss:.1f}"}
            if event.bits_per_dim is not None:
                postfix["bits/dim"] = f"{event.bits_per_dim:.3f}"
            postfix["img/s"] = f"{self.images_per_sec:.0f}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(event.step - self.bar.n)
        elif isinstance(event, EvalEvent):
            self.write(describe_eval(event))
        elif isinstance(event, (NanEvent, OverfitEvent)):
            self.write(f"warning: {event.message}")

    def write(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text)

    def close(self) -> None:
        self.bar.close()


def describe_eval(event: EvalEvent) -> str:
    value = event.test_bits_per_dim
    text = f"test bits/dim {value:.4f}" if value is not None else f"test loss {event.test_loss:.4f} nats"
    if event.train_bits_per_dim is not None and value is not None:
        text += f" (training {event.train_bits_per_dim:.4f})"
    score = event.sample_score
    if score is not None:
        text += (
            f"; samples recognised {score['recognised']:.0%}, class entropy "
            f"{score['class_entropy_bits']:.2f} bits, Frechet {score['frechet']:.1f}"
        )
    return f"step {event.step}: {text}{' (best)' if event.best else ''}"


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def one_line(text: str, limit: int = 600) -> str:
    """``text`` as one printable line: ANSI escapes removed, line breaks and runs of spaces collapsed."""
    text = " ".join(ANSI_ESCAPE.sub("", str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_os_error(error: OSError) -> str:
    """``cannot use /x/runs (Permission denied); ...`` for a file system error."""
    where = f" {error.filename}" if error.filename else ""
    return (
        f"cannot use{where} ({error.strerror or error}); check the folder's permissions and free space, or "
        "choose another folder with --runs-dir / --data-dir"
    )


def command(prog: str) -> str:
    """How a user types the command again: ``python main.py`` or ``flowlab-train``."""
    return f"python {prog}" if prog.endswith(".py") else prog


def describe_start(trainer: Trainer) -> str:
    """One line on what is about to train, where and from which step."""
    config, processes = trainer.config, trainer.context.world_size
    parameters = sum(p.numel() for p in trainer.model.parameters())
    model = f"{config.model} ({parameters:,} parameters; {get_family(config.model).summary(config)})"
    data = f"{len(trainer.train_data):,} training / {len(trainer.test_data):,} test samples"
    where = f"device {trainer.device}, {processes} process{'es' * (processes > 1)}"
    return f"{model} on {config.dataset}: {data}; {where}, global batch {config.batch_size}; " + (
        f"training for {config.minutes:g} minutes from step {trainer.step}"
        if config.minutes
        else f"starting at step {trainer.step} of {config.steps}"
    )
