"""The seed's training loop, shared by main.py and the dashboard.

"Random draw a batch of MNIST data and let realnvp give the probabilities of every sample from this
batch, and mean this batch of probability and let negative this mean as loss and do gradient descent":
each step draws a random batch, dequantizes it, takes loss = -mean logProbability and makes one AdamW
step (warmup, learning-rate schedule, gradient clipping, weight decay). The trainer prints nothing; it
reports events to a callback and, given a run folder, writes metrics and checkpoints (see runs.py).

Randomness: one CPU generator seeded by ``config.seed`` draws both the batch indices and the
dequantization noise of the *global* batch; every process draws the same global batch and keeps its
own slice, so N processes see exactly the batch one process would. The generator's state is saved in
every checkpoint, which makes a resumed run continue step for step.
"""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .. import limits
from ..bijection import Logit
from ..data import bits_per_dim, dequantize, load_mnist, make_toy, random_batch
from ..models import NICE, Flow, RealNVP
from ..priors import PRIORS
from ..speed import bf16_status
from . import runs
from .checkpoints import check_state
from .config import IMAGE_DIMS, TOY_DIMS, TOY_TEST_POINTS, TrainConfig
from .distributed import all_reduce_mean, all_reduce_sum, any_process, current_context, resolve_device

#: Seed of the dequantization noise used by every evaluation, so test numbers compare across evaluations.
EVAL_NOISE_SEED = 1234
#: Seed of the latent draws of samples.png, so successive grids show the same latents.
SAMPLE_SEED = 0
#: Points drawn for the 2D density image of a toy run.
TOY_SAMPLE_POINTS = 20000
#: Seconds between two status.json updates while training.
STATUS_INTERVAL_S = 2.0

Event = dict[str, Any]


class NonFiniteLossError(RuntimeError):
    """The loss was NaN or infinite more often than ``config.nan_retries`` allows."""


def build_model(config: TrainConfig) -> Flow:
    """The flow a config describes: NICE or RealNVP on ``[784]`` with :class:`Logit` last for images
    (so densities are over [0, 1)^784), or on ``[2]`` without it for the 2D toys.

    Raises :class:`flows.limits.MemoryLimitError` (a ValueError) before allocating anything when training
    it would need more memory than :func:`flows.limits.memory_limit_bytes`.
    """
    config.validate()
    check_memory(config)
    return _construct_model(config)


def estimate_memory(config: TrainConfig) -> limits.MemoryEstimate:
    """Memory of training ``config``'s model with its batch size, measured on the meta device."""
    config.validate()

    def loss(model: nn.Module) -> Tensor:
        return -model.logProbability(torch.rand(config.batch_size, config.dims)).mean()

    return limits.estimate_training_memory(lambda: _construct_model(config), loss)


def check_memory(config: TrainConfig) -> limits.MemoryEstimate:
    """The estimate of :func:`estimate_memory`; MemoryLimitError (one line) when it exceeds the limit."""
    estimate = estimate_memory(config)
    limits.check_fits(
        estimate,
        f"{config.model} with hidden {list(config.hidden)}, {config.blocks} blocks, batch "
        f"{config.batch_size}",
        "lower hidden sizes, blocks or batch size",
    )
    return estimate


def _construct_model(config: TrainConfig) -> Flow:
    prior = PRIORS[config.prior]([config.dims])
    model_class = NICE if config.model == "nice" else RealNVP
    model = model_class(
        prior,
        hidden=config.hidden,
        blocks=config.blocks,
        activation=config.activation,
        split=config.resolved_split(),
    )
    if config.is_image:
        model.layers.append(Logit(config.logit_alpha))
    return model


def load_datasets(config: TrainConfig) -> tuple[Tensor, Tensor]:
    """The training and test data a config names: uint8 ``[N, 784]`` images or float32 ``[N, 2]`` points.

    With ``config.holdout = N > 0`` only the test split is read: its last N images are the test set and
    the others the training set (for machines holding only MNIST's t10k files).
    """
    if not config.is_image:
        noise = config.toy_noise
        train = make_toy(config.dataset, config.toy_points, noise, seed=config.seed)
        test = make_toy(config.dataset, TOY_TEST_POINTS, noise, seed=(config.seed + 1) % 2**63)
        return train, test
    root = config.resolved_data_dir()
    if config.holdout:
        images, _ = load_mnist(root, "test", config.dataset)
        if config.holdout >= len(images):
            raise ValueError(
                f"holdout {config.holdout} leaves no training images: the test split has {len(images)}"
            )
        train, test = images[: -config.holdout], images[-config.holdout :]
    else:
        try:
            train, _ = load_mnist(root, "train", config.dataset)
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"{error}. Or, with only the test files, train on part of them: --holdout 1000"
            ) from None
        test, _ = load_mnist(root, "test", config.dataset)
    return train.reshape(len(train), -1), test.reshape(len(test), -1)


def check_datasets(
    config: TrainConfig, train: Tensor, test: Tensor, world_size: int = 1
) -> tuple[Tensor, Tensor]:
    """Checks data against the config and returns it flat: ``[N, 784]`` uint8 or ``[N, 2]`` float32."""
    checked = []
    for name, data in (("train_data", train), ("test_data", test)):
        if not isinstance(data, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(data).__name__}")
        if config.is_image:
            if data.dtype != torch.uint8 or data.dim() < 2 or data[0].numel() != IMAGE_DIMS:
                raise ValueError(
                    f"{name} must hold uint8 images [N, 28, 28] (raw pixels 0..255) for {config.dataset}, "
                    f"got {data.dtype} {list(data.shape)}"
                )
            data = data.reshape(len(data), IMAGE_DIMS)
        else:
            if data.dim() != 2 or not data.is_floating_point():
                raise ValueError(f"{name} must be float points [N, 2], got {data.dtype} {list(data.shape)}")
            if data.shape[1] % 2:
                raise ValueError(
                    f"{name} has {data.shape[1]} coordinates per sample; a coupling splits samples into two "
                    "equal halves, so the number of coordinates must be even"
                )
            if data.shape[1] != TOY_DIMS:
                raise ValueError(f"{name} must hold 2D points [N, 2], got {list(data.shape)}")
            data = data.to(torch.float32)
        if len(data) == 0:
            raise ValueError(f"{name} is empty")
        checked.append(data.cpu())
    train, test = checked
    if config.batch_size > len(train):
        raise ValueError(
            f"batch_size {config.batch_size} is larger than the {len(train)} training samples; lower it"
        )
    if config.batch_size % world_size:
        raise ValueError(
            f"batch_size {config.batch_size} (the global batch) must split evenly over {world_size} processes"
        )
    return train, test


class _NegativeLogLikelihood(nn.Module):
    """-logProbability per sample, as a forward() so DistributedDataParallel can wrap it."""

    def __init__(self, flow: Flow) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, x: Tensor) -> Tensor:
        return -self.flow.logProbability(x)


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused where torch supports it for these parameters (several times faster on CPU)."""
    parameters = list(model.parameters())
    settings = {"lr": config.lr, "betas": (0.9, config.adam_beta2), "weight_decay": config.weight_decay}
    try:
        return torch.optim.AdamW(parameters, fused=True, **settings)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(parameters, **settings)


class Trainer:
    """Trains ``build_model(config)`` by the seed's recipe.

    Args:
        config: the hyperparameters (validated here).
        run_dir: a run folder (see :func:`runs.create_run`) to write metrics, samples, status and
            checkpoints into; None keeps everything in memory. Only rank 0 writes.
        train_data, test_data: override the dataset: uint8 ``[N, 28, 28]`` images, or float ``[N, 2]``
            points for the 2D toys.

    Attributes: ``model`` (the Flow), ``optimizer``, ``step`` (optimizer steps done), ``batch_hook``
    (None, or ``hook(step, batch) -> batch`` applied to each training batch, e.g. to inject a fault),
    ``amp_status`` (None without ``config.amp``, else a sentence saying whether the device runs bfloat16
    natively; a :class:`UserWarning` says so too where it does not).

    Speed settings that leave the maths unchanged (measured in bench/NOTES.md): AdamW with
    ``fused=True`` and gradient clipping without a pass when the norm is under the limit. The
    process-wide malloc setting (:func:`flows.speed.tune_malloc`) is left to the process: ``main.py``
    applies it; the dashboard, a long-lived server, does not.
    """

    #: Successful steps between two in-memory copies of the last good state (restored after a NaN).
    snapshot_every = 100

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        train_data: Tensor | None = None,
        test_data: Tensor | None = None,
    ) -> None:
        self.config = config.validate()
        self.context = current_context()
        self.device = resolve_device(config.device, self.context.local_rank)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.amp_status: str | None = None
        if config.amp:
            native, self.amp_status = bf16_status(self.device)
            if not native:
                warnings.warn(f"amp (bfloat16 autocast): {self.amp_status}", UserWarning, stacklevel=2)
        if train_data is None or test_data is None:
            loaded_train, loaded_test = load_datasets(config)
            train_data = loaded_train if train_data is None else train_data
            test_data = loaded_test if test_data is None else test_data
        self.train_data, self.test_data = check_datasets(
            config, train_data, test_data, self.context.world_size
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = build_model(config).to(self.device)
        self._loss_module: nn.Module = _NegativeLogLikelihood(self.model)
        if self.context.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self._loss_module = DistributedDataParallel(self._loss_module, device_ids=device_ids)
        self.optimizer = _make_optimizer(self.model, config)
        self.data_generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.lr_scale = 1.0  # lowered by nan_lr_factor after each non-finite loss
        self.nan_count = 0
        self.best_test_loss: float | None = None
        self.batch_hook: Callable[[int, Tensor], Tensor] | None = None
        self.run_dir = Path(run_dir) if run_dir is not None and self.context.is_main else None
        self._elapsed_before = 0.0  # seconds trained in earlier sessions of this run
        self._clock_start: float | None = None
        self._snapshot = self._take_snapshot()
        self._metrics: runs.MetricsWriter | None = None
        self._window_images = 0
        self._window_seconds = 0.0
        self._status_time = 0.0
        self._last_eval_step: int | None = None

    # --- construction from a run folder -------------------------------------------------------------

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        overrides: dict[str, Any] | None = None,
        train_data: Tensor | None = None,
        test_data: Tensor | None = None,
    ) -> Trainer:
        """Resumes a run from its config.json and checkpoints/last.pt (from step 0 if it has none yet).

        ``overrides`` replaces config fields (e.g. ``{"steps": 20000}``) and is saved to config.json.
        Metrics lines written after the checkpoint are dropped, so the run continues exactly.
        """
        run_dir = Path(run_dir)
        config = runs.read_config(run_dir)
        if overrides:
            config = replace(config, **overrides).validate()
        trainer = cls(config, run_dir, train_data, test_data)
        last = runs.checkpoint_path(run_dir, "last")
        if last.is_file():
            state = runs.load_checkpoint(last)
            check_state(state, config, resume=True, name=f"checkpoint {last}")  # nothing half-loads
            trainer.load_state_dict(state)
        if trainer.run_dir is not None:
            runs.remove_stale_temp_files(run_dir)
            runs.truncate_metrics(run_dir, trainer.step)
            if overrides:
                runs.write_json(run_dir / runs.CONFIG_FILE, config.to_dict())
        return trainer

    # --- state ----------------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds this run has trained, over all its sessions."""
        running = 0.0 if self._clock_start is None else time.perf_counter() - self._clock_start
        return self._elapsed_before + running

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: model, optimizer, step, RNG states, NaN guard, best loss."""
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "data": self.data_generator.get_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": 1,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "lr_scale": self.lr_scale,
            "nan_count": self.nan_count,
            "best_test_loss": self.best_test_loss,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` (as loaded by :func:`runs.load_checkpoint`)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        random.setstate(_as_python_random_state(rng["python"]))
        self.data_generator.set_state(rng["data"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        self.step = int(state["step"])
        self.lr_scale = float(state["lr_scale"])
        self.nan_count = int(state["nan_count"])
        self.best_test_loss = state["best_test_loss"]
        self._elapsed_before = float(state["elapsed"])
        self._clock_start = None
        self._last_eval_step = None
        self._snapshot = self._take_snapshot()

    def _take_snapshot(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": {name: value.detach().clone() for name, value in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _restore_snapshot(self) -> None:
        self.model.load_state_dict(self._snapshot["model"])
        # load_state_dict may keep the given tensors, so hand it a copy and keep the snapshot intact.
        self.optimizer.load_state_dict(copy.deepcopy(self._snapshot["optimizer"]))

    # --- one step -------------------------------------------------------------------------------------

    def learning_rate(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): warmup, then the schedule, times the NaN factor."""
        config = self.config
        if step < config.warmup_steps:
            factor = (step + 1) / config.warmup_steps
        elif config.schedule == "constant":
            factor = 1.0
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
        """This process's slice of the next global random batch, dequantized, on the device."""
        config, context = self.config, self.context
        rows = random_batch(self.train_data, config.batch_size, self.data_generator)
        batch = dequantize(rows, self.data_generator) if config.is_image else rows
        per_process = config.batch_size // context.world_size
        batch = batch[context.rank * per_process : (context.rank + 1) * per_process]
        return batch.to(self.device, non_blocking=True)

    def train_step(self) -> Event:
        """One optimizer step on a random batch; a NaN/inf loss rejects the step (kind "nan").

        Returns a "step" event: step, loss (nats, -mean logProbability over the global batch),
        bits_per_dim (None for 2D), images_per_sec, lr, grad_norm, elapsed.
        """
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
            negative_log_prob = self._loss_module(batch)  # [batch]
        loss = negative_log_prob.float().mean()
        loss.backward()
        grad_norm = self._clip_gradients(config.grad_clip)
        loss_value = float(all_reduce_mean(loss.detach()))
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            return self._reject_step(loss_value, grad_norm)
        self.optimizer.step()
        self.step += 1
        if self.step % self.snapshot_every == 0:
            self._snapshot = self._take_snapshot()
        seconds = time.perf_counter() - started
        self._window_images += config.batch_size
        self._window_seconds += seconds
        bits = self._bits_per_dim(loss_value)
        return {
            "kind": "step",
            "step": self.step,
            "loss": loss_value,
            "bits_per_dim": bits,
            "train_bits_per_dim": bits,
            "images_per_sec": config.batch_size / max(seconds, 1e-9),
            "lr": lr,
            "grad_norm": grad_norm,
            "elapsed": self.elapsed,
        }

    def _clip_gradients(self, max_norm: float) -> float:
        """The global gradient norm; scales the gradients to ``max_norm`` (0: never) when it is exceeded.

        The same result as ``torch.nn.utils.clip_grad_norm_``, which also multiplies every gradient by
        1.0 when the norm is under the limit: one more pass over all of them (113 MiB for the reference
        RealNVP) that this skips. A non-finite norm leaves them as they are: that step is rejected.
        """
        gradients = [p.grad for p in self.model.parameters() if p.grad is not None]
        total_norm = torch.nn.utils.get_total_norm(gradients)
        norm = float(total_norm)
        # clip_grad_norm_ scales by max_norm / (norm + 1e-6) whenever that is below 1
        if max_norm > 0 and math.isfinite(norm) and norm + 1e-6 > max_norm:
            torch.nn.utils.clip_grads_with_norm_(self.model.parameters(), max_norm, total_norm)
        return norm

    def _reject_step(self, loss_value: float, grad_norm: float) -> Event:
        """Discards the gradients, restores the last good state and lowers the learning rate."""
        self.optimizer.zero_grad(set_to_none=True)
        self._restore_snapshot()
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
        return {
            "kind": "nan",
            "step": self.step,
            "loss": loss_value,
            "grad_norm": grad_norm,
            "lr": new_lr,
            "restored_step": self._snapshot["step"],
            "nan_count": self.nan_count,
            "message": message,
            "elapsed": self.elapsed,
        }

    # --- evaluation ----------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> Event:
        """Test loss (nats) and bits/dim over the whole test split, in float32 batches, without gradients.

        The dequantization noise comes from a generator seeded with EVAL_NOISE_SEED at every call, so
        evaluations compare exactly. Under torchrun the batches are shared out among the processes.
        """
        config, context = self.config, self.context
        generator = torch.Generator().manual_seed(EVAL_NOISE_SEED)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = torch.zeros((), dtype=torch.float64, device=self.device)
        for index, start in enumerate(range(0, len(self.test_data), config.eval_batch_size)):
            rows = self.test_data[start : start + config.eval_batch_size]
            x = dequantize(rows, generator) if config.is_image else rows  # noise drawn by every process
            if index % context.world_size != context.rank:
                continue
            log_prob = self.model.logProbability(x.to(self.device))
            total += log_prob.double().sum()
            count += len(x)
        test_loss = -float(all_reduce_sum(total) / all_reduce_sum(count))
        return {
            "kind": "eval",
            "step": self.step,
            "test_loss": test_loss,
            "test_bits_per_dim": self._bits_per_dim(test_loss),
            "elapsed": self.elapsed,
        }

    @torch.no_grad()
    def sample_image(self) -> Tensor:
        """uint8 image of samples: a grid of ``sample_count`` digits, or a 2D density of toy samples."""
        count = self.config.sample_count if self.config.is_image else TOY_SAMPLE_POINTS
        cuda_devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(SAMPLE_SEED)
            samples = self.model.sample(count)
        if not self.config.is_image:
            return runs.density_image(samples)
        columns = math.ceil(math.sqrt(count))
        return runs.image_grid(samples.reshape(count, 28, 28), columns=columns)

    # --- the loop ------------------------------------------------------------------------------------

    def set_status(self, state: str, **details: Any) -> None:
        """Writes status.json (rank 0 with a run folder only) with the step counts and ``details``."""
        if self.run_dir is not None:
            runs.write_status(self.run_dir, state, step=self.step, steps=self.config.steps, **details)
            self._status_time = time.monotonic()

    def _log(self, record: Event) -> None:
        if self._metrics is not None:
            self._metrics.write(record)

    def _log_step(self, record: Event) -> None:
        """Writes a step line every log_every steps with the throughput averaged since the last line."""
        if self.step % self.config.log_every and self.step != self.config.steps:
            return
        line = dict(record)
        line.pop("bits_per_dim")
        line["images_per_sec"] = self._window_images / max(self._window_seconds, 1e-9)
        self._window_images, self._window_seconds = 0, 0.0
        self._log(line)

    def save_checkpoint(self, which: str = "last") -> Path | None:
        """Atomically writes checkpoints/<which>.pt; returns its path (None without a run folder)."""
        if self.run_dir is None:
            return None
        path = runs.checkpoint_path(self.run_dir, which)
        runs.save_checkpoint(path, self.state_dict())
        return path

    def _checkpoint(self, emit: Callable[[Event], None]) -> None:
        path = self.save_checkpoint("last")
        if path is not None:
            emit({"kind": "checkpoint", "step": self.step, "which": "last", "path": str(path)})

    def _evaluate_and_record(self, emit: Callable[[Event], None]) -> None:
        record = self.evaluate()
        self._last_eval_step = self.step
        test_loss = record["test_loss"]
        improved = math.isfinite(test_loss) and (
            self.best_test_loss is None or test_loss < self.best_test_loss
        )
        if improved:
            self.best_test_loss = test_loss
        record["best"] = improved
        self._log(record)
        emit(record)
        if self.run_dir is not None:
            runs.write_png(self.run_dir / runs.SAMPLES_FILE, self.sample_image())
            if improved:
                path = self.save_checkpoint("best")
                emit({"kind": "checkpoint", "step": self.step, "which": "best", "path": str(path)})

    def run(
        self,
        on_event: Callable[[Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Event]:
        """Trains until ``config.steps``; returns every event, in order.

        ``on_event(event)`` is called in this thread after each step, evaluation, checkpoint, rejected
        NaN step and at the end (event["kind"] in "step", "eval", "checkpoint", "nan", "done"); blocking
        in it pauses training. ``should_stop()`` returning True (in any process) ends the run after the
        current step with a checkpoint and a "done" event whose "reason" is "stopped".
        Raises NonFiniteLossError when the loss was not finite more than ``config.nan_retries`` times.
        """
        config = self.config
        history: list[Event] = []

        def emit(event: Event) -> None:
            history.append(event)
            if on_event is not None:
                on_event(event)

        if self.run_dir is not None:
            self._metrics = runs.MetricsWriter(self.run_dir / runs.METRICS_FILE)
        self.set_status("running")
        reason = "finished"
        try:
            while self.step < config.steps:
                record = self.train_step()
                if record["kind"] == "nan":
                    self._log(record)
                    emit(record)
                    if self.nan_count > config.nan_retries:
                        raise NonFiniteLossError(
                            f"training stopped: the loss was not finite {self.nan_count} times "
                            f"(more than nan_retries = {config.nan_retries}); last: {record['message']}. "
                            "Try a lower --lr, a smaller --grad-clip or no --amp"
                        )
                else:
                    self._log_step(record)
                    emit(record)
                    if config.eval_every and self.step % config.eval_every == 0:
                        self._evaluate_and_record(emit)
                    if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                        self._checkpoint(emit)
                if any_process(should_stop() if should_stop is not None else False, self.device):
                    reason = "stopped"
                    break
                if time.monotonic() - self._status_time > STATUS_INTERVAL_S:
                    self.set_status("running")
            if reason == "finished" and self._last_eval_step != self.step:
                self._evaluate_and_record(emit)
            self._checkpoint(emit)
        except BaseException as error:
            state = "stopped" if isinstance(error, KeyboardInterrupt) else "failed"
            self.set_status(state, message=str(error) or type(error).__name__)
            raise
        finally:
            if self._metrics is not None:
                self._metrics.close()
                self._metrics = None
        self.set_status("done" if reason == "finished" else "stopped")
        emit(
            {
                "kind": "done",
                "step": self.step,
                "reason": reason,
                "best_test_loss": self.best_test_loss,
                "best_test_bits_per_dim": None
                if self.best_test_loss is None
                else self._bits_per_dim(self.best_test_loss),
                "elapsed": self.elapsed,
            }
        )
        return history


def _as_python_random_state(state: Any) -> tuple:
    """random.setstate needs tuples; a checkpoint round trip may hand back lists."""
    version, internal, gauss_next = state
    return (version, tuple(internal), gauss_next)
