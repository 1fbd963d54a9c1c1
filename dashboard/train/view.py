"""The Train page's parts: run settings with validation, the live run view, the runs table and comparison.

Nothing here trains: buttons call the process-wide :class:`RunManager`, and the live view redraws from
its snapshots once a second inside ``st.fragment(run_every=...)``, so a click only reruns a fragment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import streamlit as st

from dashboard import access
from dashboard.score_view import score_table
from dashboard.services.run_manager import LIVE_STATES, RunManager, RunSnapshot
from dashboard.services.state import run_curves, run_info, run_infos, run_manager, run_quality
from dashboard.services.uploads import import_checkpoint
from dashboard.text import plain
from dashboard.train.image_options import image_options
from dashboard.widgets import charts, images
from flows import registry
from flows.data import bits_per_dim
from flows.data.toy import TOY_DATASETS
from flows.training import IMAGE_DATASETS, ConfigError, RunInfo, TrainConfig, runs
from flows.training.config import choices
from flows.training.flags import parse_widths
from flows.training.tensorboard import INSTALL_HINT, tensorboard_available

#: Seconds between two redraws of a live run.
REFRESH_S = 1.0
#: Seconds between two redraws of the runs table while a run is live.
TABLE_REFRESH_S = 3.0
#: Train-loss points averaged for the "train" tile, so it does not flicker with each batch.
TILE_WINDOW = 20

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


#: The Train page's defaults: the library's config with a shorter run and more frequent tests.
PRESET = replace(TrainConfig(), steps=2000, eval_every=200, toy_points=20_000)
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


# --- settings ---------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """What the settings widgets hold: a config when it is valid, else the problems by field."""

    config: TrainConfig | None
    problems: dict[str, str]
    note: str | None


def settings_panel(manager: RunManager) -> Settings:
    """The new-run widgets; every problem is explained right under its widget before anything starts."""
    problems: dict[str, str] = {}
    slots = {}  # field -> an empty slot right under its widget, for its error
    dataset = st.selectbox(
        "Dataset", list(DATASET_LABELS), format_func=DATASET_LABELS.__getitem__, key="train_dataset"
    )
    slots["dataset"] = st.empty()
    kind = "image" if dataset in IMAGE_DATASETS else "toy"
    labels = {family.name: family.label for family in registry.families(kind)}
    model = st.radio(
        "Model", list(labels), format_func=labels.__getitem__, horizontal=True, key="train_model"
    )
    slots["model"] = st.empty()
    family = registry.get_family(model)
    image_values: dict[str, object] = {}
    blocks, hidden_text, activation, prior = PRESET.blocks, ", ".join(map(str, PRESET.hidden)), None, None
    if family.image_shaped:
        image_values = image_options(family, slots)
    else:
        left, right = st.columns(2)
        blocks = left.number_input(
            "Blocks (f0 ∘ f1 pairs)",
            1,
            16,
            PRESET.blocks,
            key="train_blocks",
            help=TrainConfig.help("blocks"),
        )
        slots["blocks"] = left.empty()
        hidden_text = right.text_input(
            "Hidden sizes",
            ", ".join(map(str, PRESET.hidden)),
            key="train_hidden",
            help=TrainConfig.help("hidden"),
        )
        slots["hidden"] = right.empty()
        activation = left.selectbox(
            "Activation",
            choices("activation"),
            index=choices("activation").index(PRESET.activation),
            key="train_activation",
            help=TrainConfig.help("activation"),
        )
        slots["activation"] = left.empty()
        prior = right.selectbox(
            "Prior",
            choices("prior"),
            index=choices("prior").index(PRESET.prior),
            key="train_prior",
            help=TrainConfig.help("prior"),
        )
        slots["prior"] = right.empty()
    left, right = st.columns(2)
    lr = left.number_input(
        "Learning rate",
        1e-6,
        1.0,
        PRESET.lr,
        step=1e-4,
        format="%.4f",
        key="train_lr",
        help=TrainConfig.help("lr"),
    )
    slots["lr"] = left.empty()
    batch_size = right.number_input(
        "Batch size",
        1,
        4096,
        int(image_values.pop("batch_size", PRESET.batch_size)),
        key="train_batch_size",
        help=TrainConfig.help("batch_size"),
    )
    slots["batch_size"] = right.empty()
    steps = left.number_input(
        "Steps", 1, 1_000_000, PRESET.steps, step=100, key="train_steps", help=TrainConfig.help("steps")
    )
    slots["steps"] = left.empty()
    eval_every = right.number_input(
        "Test every (steps)",
        0,
        100_000,
        PRESET.eval_every,
        step=50,
        key="train_eval_every",
        help=TrainConfig.help("eval_every"),
    )
    slots["eval_every"] = right.empty()
    with st.expander("More settings"):
        seed = st.number_input(
            "Seed", 0, 2**31 - 1, PRESET.seed, key="train_seed", help=TrainConfig.help("seed")
        )
        slots["seed"] = st.empty()
        minutes = st.number_input(
            "Time budget (minutes, 0: train for the steps above)",
            0.0,
            24 * 60.0,
            0.0,
            step=1.0,
            key="train_minutes",
            help=TrainConfig.help("minutes"),
        )
        slots["minutes"] = st.empty()
        early_stop = st.number_input(
            "Early stop after (tests without a new best, 0: never)",
            0,
            1000,
            PRESET.early_stop,
            key="train_early_stop",
            help=TrainConfig.help("early_stop"),
        )
        slots["early_stop"] = st.empty()
        ema_decay = st.number_input(
            "Weight average decay (0: off)",
            0.0,
            0.9999,
            PRESET.ema_decay,
            step=0.001,
            format="%.4f",
            key="train_ema_decay",
            help=TrainConfig.help("ema_decay"),
        )
        slots["ema_decay"] = st.empty()
        warmup = st.number_input(
            "Warmup steps",
            0,
            100_000,
            PRESET.warmup_steps,
            key="train_warmup",
            help=TrainConfig.help("warmup_steps"),
        )
        slots["warmup_steps"] = st.empty()
        name = st.text_input(
            "Run name (optional)", "", key="train_name", placeholder="e.g. mnist-wide"
        ).strip()
        slots["name"] = st.empty()
        has_tensorboard = tensorboard_available()
        tensorboard = st.checkbox(
            "TensorBoard events",
            False,
            key="train_tensorboard",
            disabled=not has_tensorboard,
            help=f"Also write curves and sample grids as TensorBoard events into the run folder; then "
            f"`tensorboard --logdir {manager.runs_root}` shows every run."
            if has_tensorboard
            else INSTALL_HINT,
        )
    slots["other"] = st.empty()

    hidden: list[int] = []
    try:
        hidden = parse_widths(hidden_text)
    except ValueError as error:
        problems["hidden"] = str(error).capitalize()
    if name:
        try:
            runs.new_run_id(TrainConfig(), name)
            if (manager.runs_root / name).exists():
                raise ValueError(f"a run named {name!r} already exists; pick another name")
        except ValueError as error:
            problems["name"] = str(error)
    config, note = None, None
    if not problems:
        candidate = replace(
            PRESET,
            model=model,
            dataset=dataset,
            blocks=int(blocks),
            hidden=hidden,
            activation=activation or PRESET.activation,
            prior=prior or PRESET.prior,
            **image_values,
            lr=float(lr),
            batch_size=int(batch_size),
            steps=int(steps),
            eval_every=int(eval_every),
            checkpoint_every=max(int(eval_every), 100),
            seed=int(seed),
            warmup_steps=min(int(warmup), int(steps)),
            minutes=float(minutes),
            early_stop=int(early_stop),
            ema_decay=float(ema_decay),
            tensorboard=bool(tensorboard) and has_tensorboard,
        )
        try:
            config, note = manager.prepare_config(candidate)
        except ConfigError as error:
            problems[error.field if error.field in slots else "other"] = str(error)
    for field_name, message in problems.items():
        slots[field_name].error(plain(message), icon=":material/error:")
    return Settings(config, problems, note)


def settings_column(manager: RunManager) -> None:
    """Left column: settings, the data note, Start, and the queue size."""
    st.subheader("New run")
    settings = settings_panel(manager)
    if settings.note:
        st.info(plain(settings.note), icon=":material/info:")
    allowed = access.can_control()
    clicked = st.button(
        "Start training",
        icon=":material/play_arrow:",
        type="primary",
        disabled=settings.config is None or not allowed,
        key="train_start",
        width="stretch",
        help=None if allowed else access.LOCKED_HELP,
    )
    if clicked and settings.config is not None and allowed:  # checked again: a disabled button is no lock
        name = st.session_state.get("train_name", "").strip() or None
        try:
            access.check_queue_room(set(manager.active_ids()))
            run_id = manager.start(settings.config, name)
        except ValueError as error:
            st.error(plain(error), icon=":material/error:")
        else:
            access.started_runs().append(run_id)
            st.query_params["run"] = run_id
            st.rerun()
    with st.expander("Queue"):
        value = st.number_input(
            "Runs that train at once",
            1,
            8,
            manager.max_concurrent,
            key="train_max_concurrent",
            help="further runs wait in a queue; on a CPU machine one at a time is fastest",
            disabled=not allowed,
        )
        if int(value) != manager.max_concurrent and allowed:
            manager.set_max_concurrent(int(value))
        st.caption(f"Training uses {manager.threads} torch thread(s); the rest of the CPU serves the pages.")


# --- one run ----------------------------------------------------------------------------------------------


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
    queue_position: int | None
    message: str | None
    managed: bool


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
        queue_position=snapshot.queue_position,
        message=snapshot.message,
        managed=True,
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


def progress_text(view: RunView) -> str:
    """``Step 120 / 2,000 · 850 images/s · ETA 1 min 05 s`` (images/s and ETA while training)."""
    parts = [f"Step {view.step:,} / {view.steps:,}"]
    if view.images_per_sec:
        unit = "images/s" if view.config is not None and view.config.is_image else "points/s"
        parts.append(f"{view.images_per_sec:,.0f} {unit}")
    if view.eta_seconds is not None:
        parts.append(f"ETA {format_duration(view.eta_seconds)}")
    return " · ".join(parts)


def _tiles(view: RunView) -> None:
    """Four big numbers: train loss (mean of recent steps), test loss (bits/dim for images), step, speed."""
    curves = view.curves
    is_image = view.config is not None and view.config.is_image
    unit = "bits/dim" if is_image else "nats"
    train = test = None
    if curves is not None and len(curves.losses):
        recent = curves.losses[-TILE_WINDOW:].mean()
        train = float(curves.bits_per_dim(recent) if is_image else recent)
    if curves is not None and len(curves.test_losses):
        last = curves.test_losses[-1]
        test = float(curves.bits_per_dim(last) if is_image else last)
    columns = st.columns(4)
    columns[0].metric(f"Train {unit}", "–" if train is None else f"{train:.3f}")
    columns[1].metric(f"Test {unit}", "–" if test is None else f"{test:.3f}")
    columns[2].metric("Step", f"{view.step:,}")
    rate = "–" if not view.images_per_sec else f"{view.images_per_sec:,.0f}"
    columns[3].metric("Images/s" if is_image else "Points/s", rate)


def _controls(manager: RunManager, view: RunView) -> None:
    """Pause, Resume, Stop for runs trained here; Continue for runs that ended."""
    run_id, state = view.run_id, view.state
    columns = st.columns(4)
    allowed = access.can_control()
    locked = None if allowed else access.LOCKED_HELP
    if view.managed or state in LIVE_STATES:
        columns[0].button(
            "Pause",
            icon=":material/pause:",
            key=f"pause-{run_id}",
            disabled=not view.managed or state != "running" or not allowed,
            help=locked,
            on_click=access.guarded(manager.pause),
            args=(run_id,),
            width="stretch",
        )
        columns[1].button(
            "Resume",
            icon=":material/play_arrow:",
            key=f"resume-{run_id}",
            disabled=not view.managed or state not in ("paused", "pausing") or not allowed,
            help=locked,
            on_click=access.guarded(manager.resume),
            args=(run_id,),
            width="stretch",
        )
        columns[2].button(
            "Stop",
            icon=":material/stop:",
            key=f"stop-{run_id}",
            disabled=not view.managed
            or state not in ("queued", "running", "paused", "pausing")
            or not allowed,
            help=locked,
            on_click=access.guarded(manager.stop),
            args=(run_id,),
            width="stretch",
        )
    can_continue = state in ("created", "stopped", "interrupted", "failed") and view.step < view.steps
    if not can_continue or view.config is None:
        return
    continue_clicked = columns[3].button(
        "Continue",
        icon=":material/replay:",
        key=f"continue-{run_id}",
        width="stretch",
        disabled=not allowed,
        help=locked,
    )
    if continue_clicked and allowed:
        try:
            access.check_queue_room(set(manager.active_ids()))
            manager.continue_run(run_id)
        except (OSError, ValueError) as error:
            st.error(plain(error), icon=":material/error:")
        else:
            access.started_runs().append(run_id)
            st.rerun(scope="app")


def _downloads(view: RunView) -> None:
    """Download buttons for the run's checkpoints (read from disk only when clicked)."""
    available = [which for which in runs.CHECKPOINTS if runs.checkpoint_path(view.path, which).is_file()]
    if not available:
        st.caption("Checkpoints appear at the first test and when the run ends.")
        return
    columns = st.columns(len(available))
    for column, which in zip(columns, available, strict=True):
        path = runs.checkpoint_path(view.path, which)
        column.download_button(
            f"{which}.pt",
            icon=":material/download:",
            data=path.read_bytes,  # a callable: the file is read only when the button is clicked
            file_name=f"{view.run_id}-{which}.pt",
            mime="application/octet-stream",
            key=f"download-{which}-{view.run_id}",
            on_click="ignore",
            width="stretch",
        )


def render_run(manager: RunManager, run_id: str) -> RunView | None:
    """The panel of one run: state, controls, progress, numbers, curves, samples, checkpoints."""
    view = load_view(manager, run_id)
    if view is None:
        st.warning(plain(f"There is no run {run_id!r} in {manager.runs_root}."), icon=":material/error:")
        return None
    description = ""
    if view.config is not None:
        config = view.config
        description = (
            f"{model_label(config.model)} · {DATASET_LABELS[config.dataset]} · "
            f"{registry.get_family(config.model).summary(config)} · lr {config.lr:g} · "
            f"batch {config.batch_size}"
        )
    st.markdown(f"#### {plain(view.run_id)} {STATE_BADGES.get(view.state, plain(view.state))}")
    st.caption(description)
    if view.state == "queued" and view.queue_position is not None:
        st.info(
            f"Queued: position {view.queue_position}. It starts when a running run ends.",
            icon=":material/hourglass_top:",
        )
    data_line = data_description(view.config)
    if data_line:
        st.caption(data_line)
    if view.message:
        (st.error if view.state in ("failed", "interrupted") else st.warning)(
            view.message, icon=":material/error:"
        )
    _controls(manager, view)
    fraction = min(1.0, view.step / view.steps) if view.steps else 0.0
    st.progress(fraction, text=progress_text(view))
    _tiles(view)
    chart_column, samples_column = st.columns([2.2, 1], gap="medium")
    with chart_column:
        if view.curves is not None and len(view.curves.steps):
            figure = charts.curves_figure([view.curves])
            st.plotly_chart(figure, key=f"curves-{view.run_id}", width="stretch")
        else:
            st.caption("The loss curves appear here after the first steps.")
    with samples_column:
        if view.samples_image is not None:
            st.image(view.samples_image, caption=view.samples_caption, width="stretch")
        else:
            st.caption(view.samples_caption)
        quality_section(view)
        _downloads(view)
    return view


def quality_section(view: RunView) -> None:
    """The judge's score of the samples at the last test, and the overfitting warning, from metrics.jsonl."""
    quality = run_quality(view.path)
    if quality.overfit is not None:
        st.warning(quality.overfit, icon=":material/trending_up:")
    if quality.score is not None:
        score = quality.score
        score_table(
            score,
            score.get("real"),
            caption=f"{score['count']} samples at temperature {score['temperature']:g}, step "
            f"{quality.score_step:,}.",
        )


@st.fragment(run_every=REFRESH_S)
def live_run(run_id: str) -> None:
    """The run panel, redrawn every second while the run is live; a full rerun when it ends."""
    manager = run_manager()
    view = render_run(manager, run_id)
    if view is not None and not is_live(view):
        st.rerun(scope="app")


def is_live(view: RunView) -> bool:
    """True while a run changes: queued, training or paused here, or training in another process."""
    return view.state in LIVE_STATES


def run_panel(manager: RunManager, run_id: str) -> None:
    """The run panel: live (a fragment redrawn every second) while the run changes, else drawn once."""
    view = load_view(manager, run_id)
    if view is not None and is_live(view):
        live_run(run_id)
    else:
        render_run(manager, run_id)


# --- all runs ---------------------------------------------------------------------------------------------


def run_table_rows(manager: RunManager, infos: list[RunInfo]) -> list[dict[str, object]]:
    """One row per run folder: the manager's state for runs trained here, status.json's otherwise."""
    rows = []
    for info in infos:
        snapshot = manager.snapshot(info.run_id)
        state = snapshot.state if snapshot is not None else info.state
        if snapshot is not None and snapshot.queue_position is not None:
            state = f"queued ({snapshot.queue_position})"
        step = snapshot.step if snapshot is not None else info.step
        config = info.config
        is_image = config is not None and config.is_image
        train = None if info.loss is None else float(info.loss)
        if train is not None and is_image:
            train = float(bits_per_dim(np.float64(-train), config.dims))
        test = info.test_bits_per_dim
        rows.append(
            {
                "run": info.run_id,
                "state": state,
                "dataset": DATASET_LABELS.get(config.dataset, config.dataset) if config else "?",
                "model": model_label(config.model).split()[0] if config else "?",
                "step": f"{step:,} / {info.steps:,}" if info.steps else f"{step:,}",
                "train": None if train is None else round(train, 3),
                "test": None if test is None else round(float(test), 3),
                "unit": "bits/dim" if is_image else "nats",
                "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated)),
            }
        )
    return rows


def runs_table(manager: RunManager, infos: list[RunInfo]) -> list[str]:
    """The runs table; returns the ids of the rows selected for comparison."""
    rows = run_table_rows(manager, infos)
    event = st.dataframe(
        rows,
        key="runs_table",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
    )
    selected = event.selection.rows if event is not None else []
    return [rows[index]["run"] for index in selected if index < len(rows)]  # type: ignore[misc]


def compare_chart(manager: RunManager, run_ids: list[str]) -> None:
    """Overlaid curves of the selected runs."""
    curves = []
    for run_id in run_ids:
        view = load_view(manager, run_id)
        if view is not None and view.curves is not None:
            curves.append(view.curves)
    if not curves:
        st.caption("Tick runs in the table to overlay their curves here.")
        return
    kinds = {c.is_image for c in curves}
    metric = "bits_per_dim" if kinds == {True} else "nats"
    if len(kinds) > 1:
        st.caption("Image and 2D runs are mixed: comparing losses in nats.")
    figure = charts.curves_figure(curves, metric=metric, height=460)
    st.plotly_chart(figure, key="compare", width="stretch")


def upload_checkpoint(manager: RunManager) -> None:
    """Imports an uploaded checkpoint as a new run, loading it safely; explains a wrong file."""
    if not access.can_control():
        st.caption(f":material/lock: Uploading checkpoints: {access.LOCKED_HELP}")
        return
    uploaded = st.file_uploader(
        "Upload a checkpoint (.pt from a Flow Lab run)",
        key="train_upload",
        help="loaded with torch.load(weights_only=True): nothing in it is ever executed",
    )
    if uploaded is None:
        return
    done = st.session_state.setdefault("train_uploads_done", {})
    if uploaded.file_id not in done:
        try:
            done[uploaded.file_id] = (
                "ok",
                import_checkpoint(manager.runs_root, uploaded.getvalue(), uploaded.name),
            )
        except ValueError as error:
            done[uploaded.file_id] = ("error", f"{uploaded.name}: {error}")
    outcome, text = done[uploaded.file_id]
    if outcome == "ok":
        st.success(
            f"Imported as run {text}; open it on the Samples page or above.", icon=":material/check_circle:"
        )
    else:
        st.error(plain(text), icon=":material/error:")


def all_runs_section(manager: RunManager) -> None:
    """Runs table, comparison chart, and checkpoint upload."""
    infos = run_infos(manager.runs_root)
    st.subheader("All runs")
    st.caption(
        f"Every run folder in {manager.runs_root}, including runs started in a terminal with main.py. "
        "Tick rows to compare their curves."
    )
    if not infos:
        st.info("No runs yet: pick settings on the left and press Start training.", icon=":material/info:")
    else:
        selected = runs_table(manager, infos)
        compare_chart(manager, selected)
    upload_checkpoint(manager)


@st.fragment(run_every=TABLE_REFRESH_S)
def live_runs_section() -> None:
    """The runs section, refreshed every few seconds while some run is live."""
    all_runs_section(run_manager())


def any_live_run(manager: RunManager) -> bool:
    """True while this dashboard or another process trains a run in the runs folder."""
    if manager.active_ids():
        return True
    return any(info.state in ("running", "paused") for info in run_infos(manager.runs_root))


# --- the page ---------------------------------------------------------------------------------------------


def chosen_run(manager: RunManager, run_ids: list[str]) -> str | None:
    """The run to show: ``?run=<id>`` in the URL (so a reload reattaches), else the first active run."""
    wanted = st.query_params.get("run")
    if wanted and wanted in run_ids:
        return wanted
    if wanted:
        st.warning(plain(f"There is no run {wanted!r} in {manager.runs_root}; showing the runs there are."))
    active = manager.active_ids()
    if active:
        st.query_params["run"] = active[0]
        return active[0]
    return None


def _select_run() -> None:
    st.query_params["run"] = st.session_state["train_view_run"]


def train_page() -> None:
    """The whole Train page."""
    manager = run_manager()
    st.title("Train")
    st.caption(
        "Train NICE or RealNVP live. Runs train in the background on the server: closing the tab does not "
        "stop them; reloading the page finds them again."
    )
    run_ids = [info.run_id for info in run_infos(manager.runs_root)]
    settings, panel = st.columns([1, 2.4], gap="large")
    with settings, st.container(border=True):
        settings_column(manager)
    with panel:
        current = chosen_run(manager, run_ids)
        if run_ids:
            st.session_state["train_view_run"] = current
            st.selectbox(
                "Show run",
                run_ids,
                key="train_view_run",
                on_change=_select_run,
                placeholder="pick a run to show",
            )
        if current is None:
            st.info(
                "No run is training. Choose settings on the left and press **Start training**; "
                "a small RealNVP on MNIST digits shows digits within a minute.",
                icon=":material/arrow_back:",
            )
        else:
            run_panel(manager, current)
    st.divider()
    if any_live_run(manager):
        live_runs_section()
    else:
        all_runs_section(manager)
