"""The Train page's new-run form: the settings widgets with their errors, Start, and the queue size."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from dashboard import access
from dashboard.services.form_limits import FORM_MAXIMA as MAX
from dashboard.services.run_manager import RunManager
from dashboard.text import plain
from dashboard.train.image_options import image_options
from dashboard.train.labels import DATASET_LABELS
from flows import registry
from flows.training import IMAGE_DATASETS, ConfigError, TrainConfig, runs
from flows.training.config import MAX_AUGMENT_SHIFT, choices
from flows.training.factory import device_kind
from flows.training.flags import parse_widths
from flows.training.tensorboard import INSTALL_HINT, tensorboard_available

#: The Train page's defaults: the library's config with a shorter run and more frequent tests.
PRESET = replace(TrainConfig(), steps=2000, eval_every=200, toy_points=20_000)


@dataclass
class Settings:
    """What the settings widgets hold: a config when it is valid, else the problems by field."""

    config: TrainConfig | None
    problems: dict[str, str]
    note: str | None


def _number(
    place: Any,
    slots: dict[str, Any],
    field: str,
    label: str,
    low: float,
    high: float,
    *,
    value: float | None = None,
    key: str | None = None,
    **options: Any,
) -> Any:
    """A number widget for ``TrainConfig.<field>`` (default from :data:`PRESET`, help from the config),
    drawn in ``place`` (a column or ``st``) with an empty slot under it for its error in ``slots``."""
    number = place.number_input(
        label,
        low,
        high,
        getattr(PRESET, field) if value is None else value,
        key=key or f"train_{field}",
        help=TrainConfig.help(field),
        **options,
    )
    slots[field] = place.empty()
    return number


def _choice(place: Any, slots: dict[str, Any], field: str, label: str) -> str:
    """A select box over the config's choices for ``field``, like :func:`_number`."""
    options = choices(field)
    chosen = place.selectbox(
        label,
        options,
        index=options.index(getattr(PRESET, field)),
        key=f"train_{field}",
        help=TrainConfig.help(field),
    )
    slots[field] = place.empty()
    return chosen


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
    # the family's measured preset (weight average, shifted digits) where it has one: on the digits only
    family_preset = family.preset(device_kind("auto")) if kind == "image" else {}
    image_values: dict[str, object] = {}
    blocks, hidden_text, activation, prior = PRESET.blocks, ", ".join(map(str, PRESET.hidden)), None, None
    if family.image_shaped:
        image_values = image_options(family, slots)
    else:
        left, right = st.columns(2)
        blocks = _number(left, slots, "blocks", "Blocks (f0 ∘ f1 pairs)", 1, MAX["blocks"])
        hidden_text = right.text_input(
            "Hidden sizes",
            ", ".join(map(str, PRESET.hidden)),
            key="train_hidden",
            help=TrainConfig.help("hidden"),
        )
        slots["hidden"] = right.empty()
        activation = _choice(left, slots, "activation", "Activation")
        prior = _choice(right, slots, "prior", "Prior")
    left, right = st.columns(2)
    lr = _number(left, slots, "lr", "Learning rate", 1e-6, MAX["lr"], step=1e-4, format="%.4f")
    batch_size = _number(
        right,
        slots,
        "batch_size",
        "Batch size",
        1,
        MAX["batch_size"],
        value=int(image_values.pop("batch_size", PRESET.batch_size)),
    )
    steps = _number(left, slots, "steps", "Steps", 1, MAX["steps"], step=100)
    eval_every = _number(right, slots, "eval_every", "Test every (steps)", 0, MAX["eval_every"], step=50)
    with st.expander("More settings"):
        seed = _number(st, slots, "seed", "Seed", 0, MAX["seed"])
        minutes = _number(
            st,
            slots,
            "minutes",
            "Time budget (minutes, 0: train for the steps above)",
            0.0,
            MAX["minutes"],
            step=1.0,
        )
        early_stop = _number(
            st,
            slots,
            "early_stop",
            "Early stop after (tests without a new best, 0: never)",
            0,
            MAX["early_stop"],
        )
        ema_decay = _number(
            st,
            slots,
            "ema_decay",
            "Weight average decay (0: off)",
            0.0,
            MAX["ema_decay"],
            value=float(family_preset.get("ema_decay", PRESET.ema_decay)),
            key=f"train_ema_decay_{kind}_{model}",  # each family shows its own preset
            step=0.001,
            format="%.4f",
        )
        augment_shift = _number(
            st,
            slots,
            "augment_shift",
            "Move training digits by up to (pixels, 0: off)",
            0,
            MAX_AUGMENT_SHIFT,
            value=int(family_preset.get("augment_shift", PRESET.augment_shift)),
            key=f"train_augment_shift_{kind}_{model}",
        )
        warmup = _number(
            st, slots, "warmup_steps", "Warmup steps", 0, MAX["warmup_steps"], key="train_warmup"
        )
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
            augment_shift=int(augment_shift),
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
