"""Extending a run that ended by N more steps or minutes, as exactly as a resume.

An extension is a resume (``Trainer.from_run``) with a larger total: it restores everything
``checkpoints/last.pt`` holds (weights, optimizer, random generators, moving average, step, elapsed time),
so N steps and then K more give the same weights, bit for bit, as one run of N + K steps wherever the
learning-rate schedule is the same in both: with ``schedule="constant"`` (warmup shorter than N).

A cosine or linear schedule is laid over the run's total (steps, or minutes of a time budget), so an
extension lays it again over the new total: from step N on, every step gets the rate an uninterrupted run
of N + K steps has at that step (the rate rises from the old end's floor back to the longer schedule's
value), while the first N steps were trained on the shorter schedule. The continuation is therefore a
fine-tuning from the finished run, not the longer run itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import runs


def extension(run_dir: str | Path, more_steps: int = 0, more_minutes: float = 0.0) -> dict[str, Any]:
    """The config changes for ``Trainer.from_run(run_dir, changes)`` that train ``more_steps`` steps or
    ``more_minutes`` minutes (exactly one of them) past the run's last checkpoint.

    A run counted in steps gets ``{"steps": its step + more_steps}``; a run with a time budget gets
    ``{"minutes": the minutes it trained + more_minutes}``. ValueError, saying which to use, otherwise.
    """
    if (more_steps > 0) == (more_minutes > 0) or more_steps < 0 or more_minutes < 0:
        raise ValueError(
            f"extend by a positive number of steps or of minutes, one of them (got {more_steps} steps, "
            f"{more_minutes} minutes)"
        )
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    last = runs.checkpoint_path(run_dir, "last")
    state = runs.load_checkpoint(last) if last.is_file() else {"step": 0, "elapsed": 0.0}
    if config.minutes and more_steps:
        raise ValueError(
            f"{run_dir.name} trained for a time budget ({config.minutes:g} minutes); extend it by minutes"
        )
    if not config.minutes and more_minutes:
        raise ValueError(f"{run_dir.name} trained for a step count ({config.steps:,}); extend it by steps")
    if more_steps:
        return {"steps": int(state["step"]) + int(more_steps)}
    return {"minutes": float(state.get("elapsed", 0.0)) / 60 + float(more_minutes)}
