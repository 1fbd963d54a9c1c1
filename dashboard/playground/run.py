"""A playground training run: a 2D flow, its trainer and its history, trained in a background thread.

Why a thread: on a 2-core machine the page's redraws (figures, websocket, the browser) would otherwise
stall training; a thread keeps one core stepping while the page draws. The thread never calls
streamlit. It takes :attr:`PlaygroundRun.lock` for each optimizer step, and the page copies the weights
under the same lock (:meth:`PlaygroundRun.snapshot`) and draws from the copy, so a panel never sees a
half-updated model. The thread stops on :meth:`PlaygroundRun.pause`, when training diverges, and when
the page has not called :meth:`PlaygroundRun.touch` for ``HEARTBEAT_TIMEOUT`` seconds (a closed tab):
it is a :class:`dashboard.services.loop.BackgroundLoop`, the run manager's loop class.

Every optimizer step goes through :meth:`PlaygroundRun.step`, which calls
``flows.training.Trainer.train_step``.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from dashboard.services.loop import BackgroundLoop
from dashboard.services.threads import one_thread
from dashboard.services.turns import PLAYGROUND_TURNS
from flows import Flow, registry
from flows.training import NanEvent, TrainConfig, Trainer


def model_names() -> dict[str, str]:
    """The flow families the playground offers (those that suit 2D points), name -> title."""
    return {family.name: family.title for family in registry.families("toy")}


#: The playground's runs never end on their own; Pause stops them.
ENDLESS_STEPS = 10**9
#: Size of the fixed latent sample drawn as "model samples".
LATENT_POINTS = 1500
#: A background loop stops when the page has not checked in for this long.
HEARTBEAT_TIMEOUT = 20.0


def _standard_sample(prior: str, n: int, seed: int) -> Tensor:
    """``n`` reproducible draws ``[n, 2]`` from the standard Gaussian or logistic prior."""
    generator = torch.Generator().manual_seed(seed)
    if prior == "logistic":
        uniform = torch.rand(n, 2, generator=generator).clamp(1e-6, 1 - 1e-6)
        return torch.log(uniform) - torch.log1p(-uniform)
    return torch.randn(n, 2, generator=generator)


#: The playground's training settings: the library's config with a constant lr, no files and no warmup;
#: sin conditioners (8 blocks of 64), AdamW beta2 0.99 and clip 5 wrap the spiral within a minute.
PRESET = replace(
    TrainConfig(),
    dataset="moons",  # any 2D toy: the playground's own points replace its data
    blocks=8,
    hidden=[64],
    activation="sin",
    lr=7e-4,
    batch_size=256,
    grad_clip=5.0,
    adam_beta2=0.99,
    steps=ENDLESS_STEPS,
    warmup_steps=0,
    schedule="constant",
    device="cpu",
    eval_every=0,
    checkpoint_every=0,
)


@dataclass(frozen=True)
class FlowSettings:
    """The widget-facing (hashable) part of :data:`PRESET` a playground run trains with."""

    model: str = PRESET.model  # a flow family of flows.registry that suits 2D points
    blocks: int = PRESET.blocks
    hidden: tuple[int, ...] = tuple(PRESET.hidden)
    activation: str = PRESET.activation
    prior: str = PRESET.prior
    lr: float = PRESET.lr  # constant; lowered by the trainer after a non-finite loss
    batch_size: int = PRESET.batch_size
    seed: int = PRESET.seed
    grad_clip: float = PRESET.grad_clip
    adam_beta2: float = PRESET.adam_beta2

    def train_config(self, points: int) -> TrainConfig:
        """The trainer's config for ``points`` training points: :data:`PRESET` with these settings."""
        settings = {name: getattr(self, name) for name in self.__dataclass_fields__}
        settings.update(hidden=list(self.hidden), batch_size=min(self.batch_size, points), toy_points=points)
        return replace(PRESET, **settings).validate()


@dataclass
class History:
    """Per-step training loss and periodic held-out NLL, in nats."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # training time when the step finished
    eval_steps: list[int] = field(default_factory=list)
    eval_nll: list[float] = field(default_factory=list)

    def copy(self) -> History:
        count = min(len(self.steps), len(self.losses), len(self.seconds))
        evals = min(len(self.eval_steps), len(self.eval_nll))
        return History(
            self.steps[:count],
            self.losses[:count],
            self.seconds[:count],
            self.eval_steps[:evals],
            self.eval_nll[:evals],
        )


class _Background:
    """What a page can ask of something trained in a background loop (``self._loop``)."""

    _loop: BackgroundLoop

    @property
    def running(self) -> bool:
        """True while the background thread trains."""
        return self._loop.running

    @property
    def error(self) -> str | None:
        """Why the background thread stopped, if it failed."""
        return self._loop.error

    def touch(self) -> None:
        """Tells the background thread the page is still open."""
        self._loop.touch()


class PlaygroundRun(_Background):
    """One flow learning one 2D target; see the module docstring."""

    def __init__(self, settings: FlowSettings, train_points: Tensor, test_points: Tensor) -> None:
        if train_points.dim() != 2 or train_points.shape[1] != 2 or len(train_points) < 2:
            raise ValueError(f"expected training points of shape [n >= 2, 2], got {list(train_points.shape)}")
        self.settings = settings
        self.train_points = train_points.float()
        self.test_points = test_points.float()
        self.trainer = Trainer(
            settings.train_config(len(train_points)), train_data=self.train_points, test_data=self.test_points
        )
        self.history = History()
        self.training_seconds = 0.0
        self.diverged: str | None = None  # why training stopped for good, for the page to show
        self.notice: str | None = None  # the last rejected step's message, for the page to show
        #: A fixed latent sample, so "model samples" move smoothly from one refresh to the next.
        self.latent = _standard_sample(settings.prior, LATENT_POINTS, settings.seed + 1)
        #: Held for each optimizer step and for copying the weights out.
        self.lock = threading.RLock()
        self._loop = BackgroundLoop(
            self._train_chunk,
            name=f"playground-{settings.model}",
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            turns=PLAYGROUND_TURNS,
        )
        self._view_model = copy.deepcopy(self.model).requires_grad_(False)
        #: The trained model's tensors and the view model's, in the same order, for a fast copy.
        own = [*self.model.parameters(), *self.model.buffers()]
        view = [*self._view_model.parameters(), *self._view_model.buffers()]
        self._tensor_pairs = list(zip(own, view, strict=True))

    @property
    def model(self) -> Flow:
        """The model being trained (read it under :attr:`lock`, or use :meth:`snapshot`)."""
        return self.trainer.model

    @property
    def steps_done(self) -> int:
        return len(self.history.steps)

    # --- training ---------------------------------------------------------------------------------------

    def step(self) -> float:
        """One optimizer step on a random batch; returns its loss (nats). The only place that trains.

        A non-finite loss makes the trainer reject the step, restore its last good weights and halve
        the learning rate; after ``nan_retries`` of those the run stops for good (:attr:`diverged`).
        """
        with self.lock:
            started = time.perf_counter()
            record = self.trainer.train_step()
            self.training_seconds += time.perf_counter() - started
            loss = float(record.loss)
            if isinstance(record, NanEvent):
                self.notice = record.message
                if self.trainer.nan_count > self.trainer.config.nan_retries:
                    self.diverged = (
                        f"training diverged: the loss was not finite {self.trainer.nan_count} times. "
                        "Lower the learning rate and press Reset."
                    )
                return loss
            self.history.steps.append(record.step)
            self.history.losses.append(loss)
            self.history.seconds.append(self.training_seconds)
            return loss

    def train_for(self, seconds: float, max_steps: int | None = None) -> int:
        """Steps in this thread until ``seconds`` of wall time (or ``max_steps`` steps) have passed."""
        deadline = time.perf_counter() + seconds
        done = 0
        with one_thread():
            while not self.diverged and (max_steps is None or done < max_steps):
                self.step()
                done += 1
                if time.perf_counter() >= deadline:
                    break
        return done

    def _train_chunk(self) -> bool:
        for _ in range(10):
            if self.diverged or self._loop.stop_requested:  # Pause waits for one step at most
                return False
            self.step()
        return True

    def play(self) -> None:
        """Starts training in the background (no-op when already running or diverged)."""
        if not self.diverged:
            self._loop.start()

    def pause(self) -> None:
        """Stops background training; returns once the thread has finished its current step."""
        self._loop.stop()

    # --- reading --------------------------------------------------------------------------------------

    def snapshot(self) -> tuple[Flow, History, int]:
        """A copy of the current weights (in a model only the caller uses), the history and the step."""
        with self.lock, torch.no_grad():
            # One foreach copy: load_state_dict took a tenth of a playground refresh's server time.
            torch._foreach_copy_(
                [view for _, view in self._tensor_pairs], [own for own, _ in self._tensor_pairs]
            )
            return self._view_model, self.history.copy(), self.steps_done

    def copy_model(self) -> Flow:
        """A private copy of the current model, for work outside the page's script thread."""
        with self.lock:
            return copy.deepcopy(self.model).requires_grad_(False)

    @torch.no_grad()
    def evaluate(self, model: Flow | None = None, step: int | None = None) -> float:
        """Held-out NLL (nats): -mean log p over the test points; recorded in the history.

        ``model`` and ``step`` come from :meth:`snapshot` when another thread may be training.
        """
        if model is None:
            model, _, step = self.snapshot()
        log_density = torch.cat([model.logProbability(chunk) for chunk in self.test_points.split(4096)])
        nll = float(-log_density.mean())
        with self.lock:
            if self.history.eval_steps and self.history.eval_steps[-1] == step:
                self.history.eval_nll[-1] = nll
            else:
                self.history.eval_steps.append(step)
                self.history.eval_nll.append(nll)
        return nll

    def set_lr(self, lr: float) -> None:
        """Changes the learning rate from the next step on, keeping the model and AdamW's moments."""
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        with self.lock:
            self.settings = replace(self.settings, lr=lr)
            self.trainer.config = replace(self.trainer.config, lr=lr).validate()

    @torch.no_grad()
    def samples(self, model: Flow | None = None, count: int = LATENT_POINTS) -> Tensor:
        """The first ``count`` points of the fixed latent sample pushed through F: ``[count, 2]``."""
        model = model if model is not None else self.snapshot()[0]
        return model.forward(self.latent[:count])[0]

    def metrics_csv(self) -> str:
        """The run's metrics, one row per step: step, loss, training seconds, held-out NLL where measured."""
        with self.lock:
            history = self.history.copy()
        held_out = dict(zip(history.eval_steps, history.eval_nll, strict=True))
        lines = ["step,train_loss_nats,training_seconds,heldout_nll_nats"]
        for step, loss, seconds in zip(history.steps, history.losses, history.seconds, strict=True):
            nll = held_out.get(step)
            lines.append(f"{step},{loss:.6f},{seconds:.4f},{'' if nll is None else f'{nll:.6f}'}")
        return "\n".join(lines) + "\n"


class Race(_Background):
    """Every toy family of the registry (NICE, RealNVP): same data, sizes, seed, lr and step budget."""

    def __init__(
        self, settings: FlowSettings, train_points: Tensor, test_points: Tensor, budget: int
    ) -> None:
        if budget < 1:
            raise ValueError(f"the step budget must be positive, got {budget}")
        self.budget = budget
        self.runs = {
            name: PlaygroundRun(replace(settings, model=name), train_points, test_points)
            for name in registry.family_names("toy")
        }
        self.final_nll: dict[str, float] = {}
        self._loop = BackgroundLoop(
            lambda: self.advance(chunk=5),
            name="playground-race",
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            turns=PLAYGROUND_TURNS,
        )

    @property
    def steps_done(self) -> int:
        """Steps each model has taken (the race keeps them equal)."""
        return min(run.steps_done for run in self.runs.values())

    @property
    def finished(self) -> bool:
        return bool(self.final_nll)

    def advance(self, chunk: int = 5) -> bool:
        """``chunk`` more steps for each model in turn; evaluates all at the budget; False once done."""
        if self.finished:
            return False
        for run in self.runs.values():
            run.train_for(math.inf, max_steps=min(chunk, self.budget - run.steps_done))
        if all(run.diverged or run.steps_done >= self.budget for run in self.runs.values()):
            self.final_nll = {name: run.evaluate() for name, run in self.runs.items()}
            return False
        return True

    def start(self) -> None:
        """Runs the race in the background until the budget is spent."""
        self._loop.start()

    def stop(self) -> None:
        """Stops the race's thread (after its current chunk)."""
        self._loop.stop()
