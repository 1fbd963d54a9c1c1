"""The seed's training loop, shared by main.py and the dashboard.

"Random draw a batch of MNIST data and let realnvp give the probabilities of every sample from this
batch, and mean this batch of probability and let negative this mean as loss and do gradient descent":
each step draws a random batch, dequantizes it, takes loss = -mean logProbability and makes one AdamW
step (warmup, learning-rate schedule, gradient clipping, weight decay). The trainer prints nothing and
writes no file: it reports typed events (events.py) to listeners; ``run_logger.RunLogger`` is the one that
writes a run folder.

Randomness: one CPU generator seeded by ``config.seed`` draws both the batch indices and the
dequantization noise of the *global* batch; every process draws the same global batch and keeps its
own slice, so N processes see exactly the batch one process would. The generator's state is saved in
every checkpoint, which makes a resumed run continue step for step.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..data import bits_per_dim, dequantize, random_batch, random_shift
from ..models import Flow
from ..speed import bf16_status
from . import runs
from .checkpoints import check_state
from .config import IMAGE_DIMS, TrainConfig
from .distributed import all_reduce_mean, any_process, current_context, resolve_device
from .ema import WeightAverage
from .events import (
    CheckpointEvent,
    DoneEvent,
    EvalEvent,
    Event,
    FailEvent,
    Listener,
    NanEvent,
    StartEvent,
    StepEvent,
)
from .factory import (
    NegativeLogLikelihood,
    build_model,
    make_optimizer,
    training_data,
)
from .guards import clip_gradients, restore_snapshot, take_snapshot
from .held_out import BestWatch, held_out_loss
from .rng import load_rng_state, rng_state

#: DoneEvent reasons of a run that ended as planned (a full "last" checkpoint and evaluation follow).
PLANNED_ENDS = ("finished", "time", "early stop")


class NonFiniteLossError(RuntimeError):
    """The loss was NaN or infinite more often than ``config.nan_retries`` allows."""


class Trainer:
    """Trains ``build_model(config)`` by the seed's recipe.

    Args:
        config: the hyperparameters (validated here).
        train_data, test_data: override the dataset: uint8 ``[N, 28, 28]`` images, or float ``[N, 2]``
            points for the 2D toys.

    ``sample_scorer(model) -> dict`` (e.g. :class:`flows.evaluation.SampleScorer`), when given, scores
    fresh samples at each evaluation into ``EvalEvent.sample_score``.

    Generalisation is watched: with ``config.ema_decay`` the evaluations, samples and checkpoints'
    ``"ema"`` use an exponential moving average of the weights (:mod:`flows.training.ema`); an
    :class:`OverfitEvent` says when held-out bits/dim rose above their best while training bits/dim fell
    (:class:`flows.training.held_out.BestWatch`); ``config.early_stop`` ends a run after that
    many evaluations without a new best. ``config.minutes`` ends it after that much training time, the
    learning-rate schedule following the elapsed fraction of the budget.

    Attributes: ``model`` (the Flow), ``optimizer``, ``step`` (optimizer steps done), ``batch_hook``
    (None, or ``hook(step, batch) -> batch`` applied to each training batch, e.g. to inject a fault),
    ``amp_status`` (None without ``config.amp``, else a sentence saying whether the device runs bfloat16
    natively; a :class:`UserWarning` says so too where it does not).

    Speed settings that leave the maths unchanged (measured in bench/NOTES.md): AdamW with
    ``fused=True`` and gradient clipping without a pass when the norm is under the limit
    (:func:`flows.training.guards.clip_gradients`). The
    process-wide malloc setting (:func:`flows.speed.tune_malloc`) is left to the process: ``main.py``
    applies it; the dashboard, a long-lived server, does not.
    """

    #: Successful steps between two in-memory copies of the last good state (restored after a NaN).
    snapshot_every = 100

    def __init__(
        self,
        config: TrainConfig,
        train_data: Tensor | None = None,
        test_data: Tensor | None = None,
        train_labels: Tensor | None = None,
        test_labels: Tensor | None = None,
        sample_scorer: Callable[[Flow], dict[str, Any]] | None = None,
    ) -> None:
        self.config = config.validate()
        self.sample_scorer = sample_scorer
        self.context = current_context()
        self.device = resolve_device(config.device, self.context.local_rank)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.amp_status: str | None = None
        if config.amp:
            native, self.amp_status = bf16_status(self.device)
            if not native:
                warnings.warn(f"amp (bfloat16 autocast): {self.amp_status}", UserWarning, stacklevel=2)
        self.train_data, self.test_data, self.train_labels, self.test_labels = training_data(
            config, train_data, test_data, train_labels, test_labels, self.context.world_size
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = build_model(config).to(self.device)
        self._loss_module: nn.Module = NegativeLogLikelihood(self.model)
        if self.context.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self._loss_module = DistributedDataParallel(self._loss_module, device_ids=device_ids)
        self.optimizer = make_optimizer(self.model, config)
        self.ema = WeightAverage(self.model, config.ema_decay) if config.ema_decay else None
        self.data_generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.lr_scale = 1.0  # lowered by nan_lr_factor after each non-finite loss
        self.nan_count = 0
        self.watch = BestWatch()  # the best evaluation so far
        self._train_loss_sum, self._train_loss_count = 0.0, 0  # steps since the last evaluation
        self.batch_hook: Callable[[int, Tensor], Tensor] | None = None
        self.batch_labels: Tensor | None = None  # the labels of the last next_batch (conditional runs)
        self._elapsed_before = 0.0  # seconds trained in earlier sessions of this run
        self._clock_start: float | None = None
        self._snapshot = take_snapshot(self.step, self.model, self.optimizer)
        self._last_eval_step: int | None = None

    # --- construction from a run folder -------------------------------------------------------------

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        overrides: dict[str, Any] | None = None,
        *data: Any,
        **options: Any,
    ) -> Trainer:
        """Resumes a run from its config.json and checkpoints/last.pt (from step 0 if it has none yet).

        ``overrides`` replaces config fields (e.g. ``{"steps": 20000}``); only the config's resumable
        fields may change (:meth:`TrainConfig.resumed`). ``data`` and ``options`` are the constructor's
        other arguments (``train_data, test_data, train_labels, test_labels, sample_scorer``). Reads
        only: attach ``run_logger.RunLogger`` to write.
        """
        run_dir = Path(run_dir)
        config = runs.read_config(run_dir)
        if overrides:
            config = config.resumed(overrides)
        trainer = cls(config, *data, **options)
        last = runs.checkpoint_path(run_dir, "last")
        if last.is_file():
            state = runs.load_checkpoint(last)
            check_state(state, config, resume=True, name=f"checkpoint {last}")  # nothing half-loads
            trainer.load_state_dict(state)
        return trainer

    # --- state ----------------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds this run has trained, over all its sessions."""
        running = 0.0 if self._clock_start is None else time.perf_counter() - self._clock_start
        return self._elapsed_before + running

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: model, optimizer, step, RNG states, NaN guard, best loss."""
        return {
            "format": 1,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(self.data_generator, self.device),
            "lr_scale": self.lr_scale,
            "nan_count": self.nan_count,
            **self.watch.state_dict(),
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` (as loaded by :func:`runs.load_checkpoint`)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        load_rng_state(state["rng"], self.data_generator, self.device)
        self.step = int(state["step"])
        self.lr_scale = float(state["lr_scale"])
        self.nan_count = int(state["nan_count"])
        self.watch.load_state_dict(state)
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self._elapsed_before = float(state["elapsed"])
        self._clock_start = None
        self._last_eval_step = None
        self._snapshot = take_snapshot(self.step, self.model, self.optimizer)

    # --- one step -------------------------------------------------------------------------------------

    def learning_rate(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): warmup, then the schedule, times the NaN factor."""
        config = self.config
        if step < config.warmup_steps:
            factor = (step + 1) / config.warmup_steps
        elif config.schedule == "constant":
            factor = 1.0
        else:
            if config.minutes:  # by the elapsed share of the time budget
                progress = min(1.0, self.elapsed / (60 * config.minutes))
            else:
                progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
            floor = config.min_lr_fraction
            if config.schedule == "cosine":
                factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
            else:
                factor = 1 - (1 - floor) * progress
        return config.lr * factor * self.lr_scale

    def _bits_per_dim(self, loss: float) -> float | None:
        """Bits per dimension of a loss in nats (None for the 2D toys, which are not pixels)."""
        if not self.config.is_image:
            return None
        return float(bits_per_dim(torch.tensor(-loss, dtype=torch.float64), IMAGE_DIMS))

    def next_batch(self) -> Tensor:
        """This process's slice of the next global random batch, dequantized, on the device, in the
        model's sample shape; the batch's labels (conditional runs) are left in ``batch_labels``."""
        config, context = self.config, self.context
        if self.train_labels is None:
            rows, labels = random_batch(self.train_data, config.batch_size, self.data_generator), None
        else:  # the same draws as random_batch, keeping the labels of the rows drawn
            indices = torch.randint(len(self.train_data), (config.batch_size,), generator=self.data_generator)
            rows, labels = self.train_data[indices], self.train_labels[indices]
        if config.augment_shift:
            rows = random_shift(rows, config.augment_shift, self.data_generator)
        batch = dequantize(rows, self.data_generator) if config.is_image else rows
        per_process = config.batch_size // context.world_size
        mine = slice(context.rank * per_process, (context.rank + 1) * per_process)
        self.batch_labels = None if labels is None else labels[mine].to(self.device)
        return self._to_model(batch[mine])

    def _to_model(self, rows: Tensor) -> Tensor:
        """Flat rows ``[B, n]`` -> ``[B, *model.shape]`` on the device."""
        return rows.reshape(len(rows), *self.model.shape).to(self.device, non_blocking=True)

    def train_step(self) -> StepEvent | NanEvent:
        """One optimizer step on a random batch: a :class:`StepEvent`, or a :class:`NanEvent` when a
        NaN/inf loss or gradient norm rejected the step."""
        if self._clock_start is None:
            self._clock_start = time.perf_counter()
        started = time.perf_counter()
        config = self.config
        batch = self.next_batch()
        if self.batch_hook is not None:
            batch = self.batch_hook(self.step, batch)
        lr = self.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=config.amp):
            negative_log_prob = self._loss_module(batch, self.batch_labels)  # [batch]
        loss = negative_log_prob.float().mean()
        loss.backward()
        grad_norm = clip_gradients(self.model, config.grad_clip)
        loss_value = float(all_reduce_mean(loss.detach()))
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            return self._reject_step(loss_value, grad_norm)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self._train_loss_sum += loss_value
        self._train_loss_count += 1
        if self.step % self.snapshot_every == 0:
            self._snapshot = take_snapshot(self.step, self.model, self.optimizer)
        seconds = time.perf_counter() - started
        return StepEvent(
            step=self.step,
            elapsed=self.elapsed,
            loss=loss_value,
            bits_per_dim=self._bits_per_dim(loss_value),
            images_per_sec=config.batch_size / max(seconds, 1e-9),
            lr=lr,
            grad_norm=grad_norm,
            seconds=seconds,
        )

    def _reject_step(self, loss_value: float, grad_norm: float) -> NanEvent:
        """Discards the gradients, restores the last good state and lowers the learning rate."""
        self.optimizer.zero_grad(set_to_none=True)
        restore_snapshot(self._snapshot, self.model, self.optimizer)
        self.nan_count += 1
        self.lr_scale *= self.config.nan_lr_factor
        what = "loss" if not math.isfinite(loss_value) else "gradient norm"
        value = loss_value if what == "loss" else grad_norm
        new_lr = self.learning_rate(self.step)
        message = (
            f"non-finite {what} ({value}) at step {self.step + 1}: step rejected, weights and optimizer "
            f"restored from step {self._snapshot['step']}, learning rate x{self.config.nan_lr_factor} "
            f"(now {new_lr:.3g}); {self.nan_count} of {self.config.nan_retries} allowed"
        )
        return NanEvent(
            step=self.step,
            elapsed=self.elapsed,
            loss=loss_value,
            grad_norm=grad_norm,
            lr=new_lr,
            restored_step=self._snapshot["step"],
            nan_count=self.nan_count,
            message=message,
        )

    # --- evaluation ----------------------------------------------------------------------------------

    def evaluation_weights(self) -> contextlib.AbstractContextManager[Flow]:
        """A block in which ``self.model`` holds the weights to evaluate and sample: the moving average
        with ``config.ema_decay``, else the trained weights themselves."""
        if self.ema is None:
            return contextlib.nullcontext(self.model)
        return self.ema.applied(self.model)

    def time_is_up(self) -> bool:
        """True when ``config.minutes`` is set and that much training time has passed."""
        return bool(self.config.minutes) and self.elapsed >= 60 * self.config.minutes

    def evaluate(self) -> EvalEvent:
        """Test loss (nats) and bits/dim over the whole test split, without gradients
        (:func:`flows.training.held_out.held_out_loss`: the same noise at every call)."""
        with self.evaluation_weights() as model:
            loss = held_out_loss(
                model,
                self.config,
                self.test_data,
                self.test_labels,
                self.context,
                self.device,
                self._to_model,
            )
        return EvalEvent(
            step=self.step, elapsed=self.elapsed, test_loss=loss, test_bits_per_dim=self._bits_per_dim(loss)
        )

    # --- the loop ------------------------------------------------------------------------------------

    def _evaluate(self, emit: Listener) -> None:
        """Evaluates (and scores samples), marks a new best test loss, asks for a "best" checkpoint
        after one, and says when the model overfits."""
        record = self.evaluate()
        self._last_eval_step = self.step
        train_bits = None
        if self._train_loss_count:
            train_bits = self._bits_per_dim(self._train_loss_sum / self._train_loss_count)
        self._train_loss_sum, self._train_loss_count = 0.0, 0
        score = None
        if self.sample_scorer is not None and self.config.is_image and self.context.is_main:
            with self.evaluation_weights() as model:
                score = self.sample_scorer(model)
        improved, overfit = self.watch.observe(
            self.step,
            self.elapsed,
            record.test_loss,
            record.test_bits_per_dim,
            train_bits,
            self._bits_per_dim,
        )
        emit(replace(record, best=improved, train_bits_per_dim=train_bits, sample_score=score))
        if improved:
            emit(CheckpointEvent(step=self.step, elapsed=self.elapsed, which="best"))
        if overfit is not None:
            emit(overfit)

    def run(
        self,
        on_event: Listener | Sequence[Listener] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Event]:
        """Trains until ``config.steps`` (or the ``config.minutes`` budget, or an early stop); returns
        every event, in order.

        ``on_event`` (one listener or several, called in order) gets each event in this thread: a
        :class:`StartEvent`, then :class:`StepEvent`, :class:`NanEvent`, :class:`EvalEvent`,
        :class:`CheckpointEvent` as they happen, and a :class:`DoneEvent` (or a :class:`FailEvent`
        before an exception leaves). Blocking in a listener pauses training. ``should_stop()`` returning
        True (in any process) ends the run after the current step with a "last" checkpoint and a
        DoneEvent whose reason is "stopped". Raises NonFiniteLossError when the loss was not finite
        more than ``config.nan_retries`` times.
        """
        config = self.config
        listeners = [] if on_event is None else [on_event] if callable(on_event) else list(on_event)
        history: list[Event] = []

        def emit(event: Event) -> None:
            history.append(event)
            for listener in listeners:
                listener(event)

        reason = "finished"
        try:
            emit(StartEvent(step=self.step, elapsed=self.elapsed, steps=config.steps))
            while config.minutes or self.step < config.steps:  # a time budget replaces the step count
                record = self.train_step()
                emit(record)
                if isinstance(record, NanEvent):
                    if self.nan_count > config.nan_retries:
                        raise NonFiniteLossError(
                            f"training stopped: the loss was not finite {self.nan_count} times "
                            f"(more than nan_retries = {config.nan_retries}); last: {record.message}. "
                            "Try a lower --lr, a smaller --grad-clip or no --amp"
                        )
                else:
                    if config.eval_every and self.step % config.eval_every == 0:
                        self._evaluate(emit)
                        if config.early_stop and self.watch.evals_since_best >= config.early_stop:
                            reason = "early stop"
                    if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                        emit(CheckpointEvent(step=self.step, elapsed=self.elapsed, which="last"))
                if any_process(should_stop() if should_stop is not None else False, self.device):
                    reason = "stopped"
                if reason == "finished" and any_process(self.time_is_up(), self.device):
                    reason = "time"
                if reason != "finished":
                    break
            if reason in PLANNED_ENDS and self._last_eval_step != self.step:
                self._evaluate(emit)
            emit(CheckpointEvent(step=self.step, elapsed=self.elapsed, which="last"))
        except BaseException as error:
            state = "stopped" if isinstance(error, KeyboardInterrupt) else "failed"
            message = str(error) or type(error).__name__
            with contextlib.suppress(Exception):  # the original error is the one to raise
                emit(FailEvent(step=self.step, elapsed=self.elapsed, state=state, message=message))
            raise
        best = self.watch.best_test_loss
        emit(
            DoneEvent(
                step=self.step,
                elapsed=self.elapsed,
                reason=reason,
                best_test_loss=best,
                best_test_bits_per_dim=None if best is None else self._bits_per_dim(best),
            )
        )
        return history
