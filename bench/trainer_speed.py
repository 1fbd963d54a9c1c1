"""``python -m bench.trainer_speed``: the speed settings inside Flow Lab's real trainer, A/B.

Times :class:`flows.training.Trainer` steps on the reference RealNVP (batch 128, real MNIST digits)
in fresh processes, one per variant, interleaved A B C C B A ...:

* ``shipped``: as ``main.py`` trains (fused AdamW, malloc tuned, clipping skips the x1.0 pass);
* ``clip_grad_norm_``: the clipping done by ``torch.nn.utils.clip_grad_norm_`` instead;
* ``default malloc``: without :func:`flows.speed.tune_malloc`.

Prints median ms/step and images/s per variant and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import report
from .run import DEFAULT_RESULTS, REPO_ROOT, find_data_dir

VARIANTS = ("shipped", "clip_grad_norm_", "default malloc")


def measure(variant: str, steps: int, warmup: int, data_dir: str, threads: int) -> list[float]:
    """In this process: step times (s) of ``steps`` trainer steps after ``warmup``, for ``variant``."""
    import torch

    from flows.speed import tune_malloc
    from flows.training import TrainConfig, Trainer

    if variant != "default malloc":
        tune_malloc()  # as main.py does before it builds the trainer
    config = TrainConfig(
        hidden=[1024, 1024], blocks=4, split="half", data_dir=data_dir, holdout=1000, batch_size=128,
        steps=warmup + steps, device="cpu", num_threads=threads, eval_every=0, checkpoint_every=0,
    )  # fmt: skip
    trainer = Trainer(config)
    if variant == "clip_grad_norm_":  # this child process only: torch's clipping in place of ours
        from flows.training import trainer as trainer_module

        def clip(model: torch.nn.Module, max_norm: float) -> float:
            limit = max_norm if max_norm > 0 else math.inf
            return float(torch.nn.utils.clip_grad_norm_(model.parameters(), limit))

        trainer_module.clip_gradients = clip
    times = []
    for index in range(warmup + steps):
        start = time.perf_counter()
        trainer.train_step()
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.trainer_speed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process (default 30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="processes per variant (default 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args(argv)
    data_dir = find_data_dir(args.data_dir)
    if data_dir is None:
        print("no MNIST t10k files found: give --data-dir or set FLOWLAB_DATA_DIR", file=sys.stderr)
        return 1
    if args.variant:
        print(json.dumps(measure(args.variant, args.steps, args.warmup, str(data_dir), args.threads)))
        return 0
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    per_process: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": str(args.threads)}
    for repeat in range(args.repeats):
        for variant in VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]:
            print(f"{variant} ({repeat + 1}/{args.repeats})", file=sys.stderr, flush=True)
            command = [sys.executable, "-m", "bench.trainer_speed", "--variant", variant]
            command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--data-dir", str(data_dir)]
            command += ["--threads", str(args.threads)]
            output = subprocess.run(
                command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=True
            )
            measured = json.loads(output.stdout.strip().splitlines()[-1])
            times[variant] += measured
            per_process[variant].append(statistics.median(measured))
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shipped = statistics.median(times["shipped"])
    lines = [
        f"## {started}: `python -m bench.trainer_speed` (flows.training.Trainer, reference RealNVP, CPU)",
        "",
        f"{args.repeats} fresh processes per variant, interleaved, {args.steps} timed steps each after "
        f"{args.warmup}; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
        "",
        "| variant | median ms/step | images/s | shipped speed-up | median ms/step of each process |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for variant, values in times.items():
        median = statistics.median(values)
        each = ", ".join(f"{value * 1e3:.0f}" for value in per_process[variant])
        lines.append(
            f"| {variant} | {median * 1e3:.1f} | {128 / median:.0f} | {median / shipped:.2f}x | {each} |"
        )
    text = "\n".join(lines) + "\n"
    report.publish(text, args.results, append=not args.no_results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
