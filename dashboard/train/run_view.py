"""What the run panel shows of one run: from the run manager (runs trained here) or the run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dashboard.services.run_manager import RunManager, RunSnapshot
from dashboard.services.state import run_curves, run_info
from dashboard.widgets import charts, images
from flows.training import TrainConfig, runs


@dataclass
class RunView:
    """What the run panel shows, from the manager (runs trained here) or from the run folder."""

    run_id: str
    path: Path
    config: TrainConfig | None
    state: str
    step: int
    steps: int
    curves: charts.Curves | None
    samples_image: np.ndarray | str | None  # a uint8 image, or the path of samples.png
    samples_caption: str
    images_per_sec: float | None
    eta_seconds: float | None
    elapsed: float | None  # seconds trained in all (known for runs trained by this server)
    queue_position: int | None
    message: str | None
    managed: bool
    activity: str | None = None  # what a run trained here does besides steps now (training the judge)


def _snapshot_view(snapshot: RunSnapshot) -> RunView:
    config = snapshot.config
    curves = charts.curves_from_lists(
        snapshot.run_id,
        snapshot.steps_seen,
        snapshot.losses,
        snapshot.eval_steps,
        snapshot.test_losses,
        config.dims,
        config.is_image,
    )
    if snapshot.steps_seen and snapshot.steps_seen[0] > 1:  # a continued run: add the earlier steps
        earlier = run_curves(snapshot.path)
        if earlier is not None:
            curves = _join(earlier, curves)
    image, caption = None, "samples appear after the first steps"
    if snapshot.samples is not None:
        zoom = 4 if config.is_image else 2
        image, caption = (
            images.enlarge(snapshot.samples, zoom),
            f"fresh samples at step {snapshot.samples_step:,}",
        )
    return RunView(
        run_id=snapshot.run_id,
        path=snapshot.path,
        config=config,
        state=snapshot.state,
        step=snapshot.step,
        steps=snapshot.steps,
        curves=curves,
        samples_image=image,
        samples_caption=caption,
        images_per_sec=snapshot.images_per_sec,
        eta_seconds=snapshot.eta_seconds,
        elapsed=snapshot.elapsed,
        queue_position=snapshot.queue_position,
        message=snapshot.message,
        managed=True,
        activity=snapshot.activity,
    )


def _join(earlier: charts.Curves, later: charts.Curves) -> charts.Curves:
    """Curves of a continued run: the file's points before the first in-memory step, then memory's."""
    first = later.steps[0]
    keep, keep_eval = earlier.steps < first, earlier.eval_steps < first
    return charts.Curves(
        later.label,
        np.concatenate([earlier.steps[keep], later.steps]),
        np.concatenate([earlier.losses[keep], later.losses]),
        np.concatenate([earlier.eval_steps[keep_eval], later.eval_steps]),
        np.concatenate([earlier.test_losses[keep_eval], later.test_losses]),
        later.dims,
        later.is_image,
    )


def _folder_view(path: Path) -> RunView:
    info = run_info(path)
    status = runs.read_status(path) or {}
    samples_file = path / runs.SAMPLES_FILE
    image = str(samples_file) if samples_file.is_file() else None
    caption = "samples at the last test (samples.png)" if image else "no samples yet"
    message = info.error or status.get("message")
    if info.state == "running":
        message = f"Training in another process (pid {status.get('pid')}, e.g. main.py); stop it there."
    elif info.state == "interrupted":
        message = (
            "The process that trained this run ended early; Continue trains on from its last checkpoint."
        )
    return RunView(
        run_id=info.run_id,
        path=path,
        config=info.config,
        state=info.state,
        step=info.step,
        steps=info.steps or 0,
        curves=run_curves(path),
        samples_image=image,
        samples_caption=caption,
        images_per_sec=None,
        eta_seconds=None,
        elapsed=None,
        queue_position=None,
        message=message,
        managed=False,
    )


def load_view(manager: RunManager, run_id: str) -> RunView | None:
    """The view of run ``run_id``, or None when no such run folder exists."""
    snapshot = manager.snapshot(run_id)
    if snapshot is not None:
        return _snapshot_view(snapshot)
    path = manager.runs_root / run_id
    if not (path / runs.CONFIG_FILE).is_file():
        return None
    return _folder_view(path)


def data_description(config: TrainConfig | None) -> str | None:
    """One line on the data a run trains and tests on, when it is not the dataset's usual split."""
    if config is None or not config.holdout:
        return None
    return (
        f"Data: the test split only. Trained on all but its last {config.holdout:,} images; "
        f"tested on those {config.holdout:,}, held out."
    )


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``"1 min 15 s"``; ``None`` -> ``"–"``."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _budget_seconds(view: RunView) -> float | None:
    """The run's time budget in seconds (``--minutes``), or None when it trains for a step count."""
    minutes = view.config.minutes if view.config is not None else 0
    return minutes * 60 if minutes else None


def progress_fraction(view: RunView) -> float:
    """How far the run is, in [0, 1]: by time for a time budget (when known), else by steps."""
    budget = _budget_seconds(view)
    if budget is not None and view.elapsed is not None:
        return min(1.0, view.elapsed / budget)
    return min(1.0, view.step / view.steps) if view.steps and budget is None else 0.0


def progress_text(view: RunView) -> str:
    """``Step 120 / 2,000 · 850 images/s · ETA 1 min 05 s`` (images/s and ETA while training); for a
    time budget ``Step 120 · 1 min 30 s of 10 min · ...``."""
    budget = _budget_seconds(view)
    if budget is None:
        parts = [f"Step {view.step:,} / {view.steps:,}"]
    elif view.elapsed is None:
        parts = [f"Step {view.step:,} · a {format_duration(budget)} budget"]
    else:
        parts = [f"Step {view.step:,} · {format_duration(view.elapsed)} of {format_duration(budget)}"]
    if view.images_per_sec:
        unit = "images/s" if view.config is not None and view.config.is_image else "points/s"
        parts.append(f"{view.images_per_sec:,.0f} {unit}")
    if view.eta_seconds is not None:
        parts.append(f"ETA {format_duration(view.eta_seconds)}")
    return " · ".join(parts)
