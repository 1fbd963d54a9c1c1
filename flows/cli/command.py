"""Train a flow from the terminal, by the seed's recipe: ``main.py`` and ``flowlab-train`` run :func:`main`.

    python main.py --model realnvp --dataset mnist --steps 20000
    python main.py --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist --steps 200
    python main.py --resume runs/<run-id> [--steps 30000]
    torchrun --nproc_per_node=2 main.py --model realnvp --steps 20000
    python main.py --tensorboard ...        # also TensorBoard events: tensorboard --logdir runs
    python main.py --export runs/<run-id>   # runs/<run-id>/export/model.safetensors + config.json

Every run writes runs/<run-id>/ (config.json, metrics.jsonl, status.json, samples.png, checkpoints/).
Exit codes: 0 finished; 130 stopped by Ctrl-C (SIGINT) and 143 by SIGTERM, both after writing
checkpoints/last.pt (continue with --resume); 1 training failed (e.g. the loss kept turning NaN);
2 invalid flags or data, rejected before any work.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from flows.evaluation import SampleScorer, scorer_for
from flows.speed import tune_malloc
from flows.training import DoneEvent, NonFiniteLossError, RunLogger, TrainConfig, Trainer, runs
from flows.training.distributed import (
    environment_context,
    init_distributed,
    resolve_device,
    shutdown_distributed,
)
from flows.training.events import Listener
from flows.training.export import CONFIG_FILE, MODEL_FILE, export_run
from flows.training.factory import check_memory, training_data
from flows.training.tensorboard import INSTALL_HINT, TensorBoardLogger, tensorboard_available

from .output import Progress, command, describe_os_error, describe_start, one_line
from .parser import EXIT_USAGE, make_config, resume_overrides

EXIT_FINISHED, EXIT_FAILED = 0, 1
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, the shell's convention


class StopRequest:
    """SIGINT/SIGTERM handling for the whole command.

    During start-up a signal interrupts at once (KeyboardInterrupt) and is remembered, so one that library
    code swallows (torch's C start-up can) still stops the command at :meth:`begin_training`. While
    training the first signal is a request to stop after the current step; a second one aborts.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self.interrupting = True
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Routes SIGINT and SIGTERM here, remembering the handlers to put back."""
        self._previous = {signum: signal.signal(signum, self._handle) for signum in EXIT_SIGNAL}

    def uninstall(self) -> None:
        """Puts the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def begin_training(self) -> None:
        """From now on the first signal asks the trainer to stop; KeyboardInterrupt if one came already."""
        if self.signal is not None:
            raise KeyboardInterrupt
        self.interrupting = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        again = self.signal is not None
        self.signal = self.signal or signum
        if self.interrupting or again:
            raise KeyboardInterrupt

    def __call__(self) -> bool:
        return self.signal is not None


def _fail(message: str, code: int, show: bool, prog: str) -> int:
    if show:
        print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return code


class _Session:
    """What the command has done so far, so an interruption or failure can leave the run folder right."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None  # set once a new run's folder exists, or a resumed run trains
        self.trainer: Trainer | None = None
        self.training = False
        self.stop = StopRequest()


def main(argv: Sequence[str] | None = None, prog: str = "main.py") -> int:
    """Runs the command line; returns the exit code (see the module docstring).

    ``prog`` names the command in its messages: ``main.py`` in a clone, ``flowlab-train`` once installed.
    Every user error (bad flags, data, checkpoint, folder permissions) ends in one line on stderr and a
    non-zero exit code, never a traceback; Ctrl-C at any moment too (130), leaving no run "created".
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    context = environment_context()
    show = context.is_main
    session = _Session()
    session.stop.install()
    try:
        return _main(argv, prog, context.local_rank, context.world_size, show, session)
    except KeyboardInterrupt:  # Ctrl-C during start-up, or a second one while stopping
        _mark_interrupted(session)
        where = f"; continue with: {command(prog)} --resume {session.run_dir}" if session.run_dir else ""
        when = "while stopping" if session.training else "before training started"
        code = EXIT_SIGNAL.get(session.stop.signal or signal.SIGINT, EXIT_SIGNAL[signal.SIGINT])
        return _fail(f"interrupted {when}{where}", code, show, prog)
    finally:
        session.stop.uninstall()


def _mark_interrupted(session: _Session) -> None:
    if session.run_dir is None or not session.run_dir.is_dir():
        return
    step = session.trainer.step if session.trainer is not None else 0
    with contextlib.suppress(OSError, ValueError):
        runs.write_status(session.run_dir, "stopped", step=step, message="interrupted by Ctrl-C")


def _main(argv: list[str], prog: str, local_rank: int, world_size: int, show: bool, session: _Session) -> int:
    try:
        config, args = make_config(argv, prog)
        if args.export is not None:
            return _export(args, show)
        if config.tensorboard and not tensorboard_available():
            raise ValueError(INSTALL_HINT)
        device = resolve_device(config.device, local_rank)
        data = training_data(config, world_size=world_size)  # train, test images; their labels
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error), EXIT_USAGE, show, prog)
    except OSError as error:  # e.g. a data folder without read permission
        return _fail(describe_os_error(error), EXIT_USAGE, show, prog)
    init_distributed(device)
    tune_malloc()  # a training process: keep freed buffers for the next step (bench/NOTES.md)
    try:
        try:
            trainer, run_dir = _start(config, args, data, show, session)
        except (ValueError, FileNotFoundError) as error:
            return _fail(str(error), EXIT_USAGE, show, prog)
        except OSError as error:
            return _fail(describe_os_error(error), EXIT_USAGE, show, prog)
        if trainer.time_is_up() or (not config.minutes and trainer.step >= config.steps):
            if show and config.minutes:
                print(f"{run_dir} already trained its {config.minutes:g} minutes; pass --more-minutes N")
            elif show:
                print(f"{run_dir} already reached step {trainer.step}; pass --more-steps N to go on")
            return EXIT_FINISHED
        try:
            return _train(trainer, run_dir, config, args, show, prog, session)
        except OSError as error:  # e.g. the disk filled up while training
            if run_dir is not None:
                with contextlib.suppress(OSError, ValueError):
                    runs.write_status(run_dir, "failed", step=trainer.step, message=describe_os_error(error))
            return _fail(describe_os_error(error), EXIT_FAILED, show, prog)
    finally:
        shutdown_distributed()


def _export(args: argparse.Namespace, show: bool) -> int:
    """``--export RUN_DIR``: the run's model as safetensors + config.json; ValueError if it cannot."""
    if args.resume is not None:
        raise ValueError("--export reads a finished or stopped run; it cannot be combined with --resume")
    if not show:
        return EXIT_FINISHED  # under torchrun only the first process writes
    folder = export_run(args.export, args.checkpoint, args.export_to)
    print(f"exported {args.export} to {folder}: {MODEL_FILE}, {CONFIG_FILE}")
    return EXIT_FINISHED


def entry_point() -> int:
    """The ``flowlab-train`` console command of an installed Flow Lab (the same as ``python main.py``)."""
    return main(prog="flowlab-train")


def _start(
    config: TrainConfig, args: argparse.Namespace, data: tuple[Any, ...], show: bool, session: _Session
) -> tuple[Trainer, Path | None]:
    """The trainer of a resumed or new run on ``data`` (train images, test images, train labels, test
    labels), with its folder checked writable before any step."""
    if args.resume is not None:
        run_dir: Path | None = Path(args.resume)
        trainer = Trainer.from_run(
            run_dir, resume_overrides(config, run_dir), *data, sample_scorer=_scorer(config, show)
        )
    else:
        runs.new_run_id(config, args.run_name)  # a bad --run-name fails before any folder exists
        check_memory(config)
        run_dir = runs.create_run(args.runs_dir, config, args.run_name) if show else None
        session.run_dir = run_dir  # from here an interruption marks the new run "stopped"
        trainer = Trainer(config, *data, sample_scorer=_scorer(config, show))
    session.trainer = trainer
    if run_dir is not None and show:
        runs.check_writable(run_dir)  # a read-only checkpoints/ fails now, not after training
    return trainer, run_dir


def _train(
    trainer: Trainer,
    run_dir: Path | None,
    config: TrainConfig,
    args: argparse.Namespace,
    show: bool,
    prog: str,
    session: _Session,
) -> int:
    """Trains until done or stopped; the exit code."""
    if show:
        print(f"run folder: {run_dir}\n{describe_start(trainer)}")
    stop = session.stop
    stop.begin_training()  # a Ctrl-C that start-up code swallowed stops the command here
    session.training, session.run_dir = True, run_dir
    total = None if config.minutes else config.steps  # a time budget has no step count to show
    progress = Progress(total, trainer.step, show and not args.no_progress)
    listeners: list[Listener] = [progress]
    board = TensorBoardLogger(run_dir, trainer) if show and config.tensorboard else None
    if board is not None:
        listeners.insert(0, board)
    if show:  # rank 0 writes the run folder
        listeners.insert(0, RunLogger(run_dir, trainer))
    try:
        history = trainer.run(on_event=listeners, should_stop=stop)
    except NonFiniteLossError as error:
        progress.close()
        return _fail(str(error), EXIT_FAILED, show, prog)
    finally:
        progress.close()
        if board is not None:
            board.close()
    done = history[-1]
    assert isinstance(done, DoneEvent)
    if show:
        best = done.best_test_bits_per_dim
        best_text = "" if best is None else f"; best test bits/dim {best:.4f}"
        if done.reason == "stopped":
            name = signal.Signals(stop.signal).name if stop.signal else "a stop request"
            print(
                f"stopped by {name} at step {trainer.step}{best_text}; checkpoint written, "
                f"continue with: {command(prog)} --resume {run_dir}"
            )
        else:
            why = {
                "time": f" (the {config.minutes:g}-minute budget)",
                "early stop": f" (early stop: no new best in {config.early_stop} evaluations)",
            }.get(done.reason, "")
            print(
                f"finished {trainer.step} steps in {trainer.elapsed:.0f} s{why}{best_text}; "
                f"run folder: {run_dir}"
            )
    if done.reason == "stopped":
        return EXIT_SIGNAL.get(stop.signal, EXIT_FINISHED) if stop.signal else EXIT_FINISHED
    return EXIT_FINISHED


def _scorer(config: TrainConfig, show: bool) -> SampleScorer | None:
    """The sample scorer of rank 0 (it prints when it trains the judge), None where not wanted."""
    return scorer_for(config, on_progress=lambda message: print(message, file=sys.stderr)) if show else None
