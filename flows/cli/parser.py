"""The training command's arguments: the config's generated flags plus the run options, parsed into a
validated :class:`TrainConfig`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from flows.speed import bf16_status
from flows.training import TrainConfig, plan_data, preset_config, runs
from flows.training.extend import extension
from flows.training.flags import add_config_flags, config_values

EXIT_USAGE = 2  # the exit code of invalid flags or data


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``main.py: error: <what> (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(suppress_defaults: bool = False, prog: str = "main.py") -> argparse.ArgumentParser:
    """The command line; with ``suppress_defaults`` only the flags actually given appear in the result."""
    parser = OneLineParser(
        prog=prog,
        description="Train a flow (a family of flows.registry, see --model) on MNIST, Fashion-MNIST or a "
        "2D toy (loss = -mean logProbability of a random batch). Writes runs/<run-id>/. Under torchrun, "
        "trains with DistributedDataParallel.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS if suppress_defaults else None,
        epilog="Exit codes: 0 finished, 130 Ctrl-C / 143 SIGTERM (checkpoint written; --resume continues), "
        "1 training failed, 2 invalid flags.",
    )
    add_config_flags(parser, suppress_defaults, extra_help={"amp": bf16_status("cpu")[1]})
    run_options: dict[str, Any] = {} if suppress_defaults else {"default": None}
    parser.add_argument(
        "--runs-dir",
        default=argparse.SUPPRESS if suppress_defaults else str(runs.default_runs_dir()),
        help="folder holding the run folders ($FLOWLAB_RUNS_DIR, else runs/ in the repository)",
    )
    parser.add_argument(
        "--run-name", help="name of the new run folder; None: <time>-<model>-<dataset>", **run_options
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue runs/<run-id> from checkpoints/last.pt exactly; of the flags above only "
        + ", ".join(TrainConfig.flag(name) for name in TrainConfig.resumable_fields())
        + " may differ from the run's",
        **run_options,
    )
    for flag, kind, what in (("--more-steps", int, "steps"), ("--more-minutes", float, "minutes")):
        parser.add_argument(
            flag,
            type=kind,
            metavar="N",
            help=f"with --resume: train N more {what} past the run's last checkpoint (its total grows by "
            "N); a constant schedule goes on as one longer run would, cosine and linear are laid again "
            "over the new total (flows/training/extend.py)",
            **run_options,
        )
    parser.add_argument(
        "--export",
        metavar="RUN_DIR",
        help="no training: write RUN_DIR/export/model.safetensors and config.json (load them with "
        "flows.training.load_export, no pickle) from the run's best checkpoint, else its last",
        **run_options,
    )
    parser.add_argument(
        "--export-to", metavar="DIR", help="folder --export writes to (None: RUN_DIR/export)", **run_options
    )
    parser.add_argument(
        "--checkpoint",
        choices=runs.CHECKPOINTS,
        help="checkpoint --export reads (None: best, else last)",
        **run_options,
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        default=argparse.SUPPRESS if suppress_defaults else False,
        help="no progress bar (the metrics still go to metrics.jsonl)",
    )
    return parser


def make_config(argv: Sequence[str], prog: str = "main.py") -> tuple[TrainConfig, argparse.Namespace]:
    """Parses flags into a validated TrainConfig (the saved one, when resuming); ValueError if invalid.

    A new image run reads its data where :func:`flows.training.plan_data` finds it, as the dashboard
    does (Debian's Fashion-MNIST, the automatic holdout when only the test split is on disk).
    """
    args = build_parser(prog=prog).parse_args(argv)
    given = config_values(build_parser(suppress_defaults=True, prog=prog).parse_args(argv))
    if args.resume is None:
        if args.more_steps is not None or args.more_minutes is not None:
            raise ValueError("--more-steps and --more-minutes extend a run: name it with --resume RUN_DIR")
        config, _ = plan_data(preset_config(given).validate())
        return config, args
    if args.run_name is not None:
        raise ValueError("--run-name names a new run; it cannot be combined with --resume")
    if args.more_steps is not None or args.more_minutes is not None:
        if "steps" in given or "minutes" in given:
            raise ValueError("give the new total (--steps, --minutes) or how much more (--more-*), not both")
        given.update(extension(args.resume, args.more_steps or 0, args.more_minutes or 0.0))
    return runs.read_config(args.resume).resumed(given, describe=TrainConfig.flag), args


def resume_overrides(config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """The fields in which ``config`` differs from the run's saved config."""
    saved = runs.read_config(run_dir)
    return {
        name: getattr(config, name)
        for name in TrainConfig.resumable_fields()
        if getattr(config, name) != getattr(saved, name)
    }
