"""The Train page's upper bounds, written once: its number widgets take their ``max_value`` here, and an
uploaded checkpoint's config must lie within the same bounds (``uploads.uploaded_config``), as if a
visitor had typed it. The lower bounds are ``TrainConfig.validate``'s (the widgets show them too)."""

from __future__ import annotations

#: Field -> highest value the Train page accepts (and so an upload); fields without a widget bound the
#: upload alone.
FORM_MAXIMA: dict[str, float] = {
    # the form's widgets
    "blocks": 16,
    "lr": 1.0,
    "batch_size": 4096,
    "steps": 1_000_000,
    "eval_every": 100_000,
    "seed": 2**31 - 1,
    "minutes": 24 * 60.0,
    "early_stop": 1000,
    "ema_decay": 0.9999,
    "warmup_steps": 100_000,
    "levels": 4,
    "steps_per_level": 32,
    "hidden_channels": 512,
    "residual_blocks": 8,
    # bounded for uploads only (the form keeps the defaults)
    "eval_batch_size": 10_000,
    "checkpoint_every": 1_000_000,
    "log_every": 1_000_000,
    "sample_count": 256,
    "toy_points": 1_000_000,
    "nan_retries": 1000,
}
