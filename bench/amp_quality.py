"""``python -m bench.amp_quality``: bf16 autocast against float32 in Flow Lab's own training path.

Trains the reference RealNVP (4 blocks, separate 392 -> 1024 -> 1024 -> 392 nets, half split, batch
128, peak lr 1e-3) with :class:`flows.training.Trainer` on 9,000 real MNIST test digits, once in
float32 and once with ``amp=True`` (same seed: same initial weights, same batches, same noise), for
the same number of steps, and compares held-out bits/dim on the other 1,000 digits. A second float32
run with another seed shows how much the result moves by chance alone. The trainer's own schedule
(warmup, cosine decay) is used, so the end point is not one noisy step of a constant learning rate.
Appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from . import report
from .run import DEFAULT_RESULTS, find_data_dir
from .workloads import BATCH_SIZE, HIDDEN, LEARNING_RATE

HELD_OUT = 1000


def train_once(data_dir: Path, steps: int, amp: bool, seed: int, device: str, threads: int) -> dict[str, Any]:
    """One training run; returns held-out bits/dim, the median images/s of its steps and its time."""
    from flows.training import TrainConfig, Trainer

    config = TrainConfig(
        model="realnvp",
        hidden=list(HIDDEN),
        blocks=4,
        split="half",
        dataset="mnist",
        data_dir=str(data_dir),
        holdout=HELD_OUT,
        batch_size=BATCH_SIZE,
        steps=steps,
        lr=LEARNING_RATE,
        seed=seed,
        device=device,
        amp=amp,
        num_threads=threads,
        eval_every=0,
        checkpoint_every=0,
    )
    trainer = Trainer(config)
    start = time.perf_counter()
    history = trainer.run()
    seconds = time.perf_counter() - start
    rates = [event.images_per_sec for event in history if event.kind == "step"][10:]
    final = [event for event in history if event.kind == "eval"][-1]
    return {
        "amp": amp,
        "seed": seed,
        "steps": trainer.step,
        "seconds": seconds,
        "images_per_sec": statistics.median(rates) if rates else None,
        "bits_per_dim": final.test_bits_per_dim,
        "amp_status": trainer.amp_status,
    }


def markdown(results: list[dict[str, Any]], context: dict[str, Any]) -> str:
    fp32, bf16 = results[0], results[1]
    lines = [
        f"## {context['started']}: `{context['command']}` (bf16 vs fp32 in flows.training.Trainer)",
        "",
        f"torch {torch.__version__}, device {context['device']}, {context['threads']} threads; "
        f"{bf16['amp_status']}. {context['steps']} steps of batch {BATCH_SIZE} "
        "on 9,000 real MNIST test digits, "
        "bits/dim on the other 1,000 (trainer defaults: AdamW fused, warmup 100, cosine to 5% of lr 1e-3, "
        "grad clip 1000; eval in fp32).",
        "",
        "| run | seed | steps | held-out bits/dim | median train images/s | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        name = "bf16 autocast" if result["amp"] else "fp32"
        lines.append(
            f"| {name} | {result['seed']} | {result['steps']} | {result['bits_per_dim']:.4f} "
            f"| {report._fmt(result['images_per_sec'], '.0f')} | {result['seconds']:.0f} |"
        )
    gap = abs(bf16["bits_per_dim"] - fp32["bits_per_dim"])
    met = "met" if gap <= report.TARGET_BF16_BITS else "**missed**"
    lines += ["", f"|bf16 - fp32| after the same steps and seed: {gap:.4f} bits/dim (target <= 0.02: {met})."]
    if len(results) > 2:
        noise = abs(results[2]["bits_per_dim"] - fp32["bits_per_dim"])
        lines.append(
            f"fp32 seed {fp32['seed']} vs seed {results[2]['seed']} (chance alone): {noise:.4f} bits/dim."
        )
    if bf16["images_per_sec"] and fp32["images_per_sec"]:
        speedup = f"{bf16['images_per_sec'] / fp32['images_per_sec']:.2f}x"
    else:
        speedup = "not measured (the first 10 steps are warm-up; run more steps)"
    lines += [f"bf16 / fp32 training speed in the trainer: {speedup}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.amp_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps of each run (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-seed", type=int, default=1, help="seed of the extra fp32 run (-1: skip it)")
    parser.add_argument("--data-dir", type=Path, help="folder with MNIST's t10k IDX files")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args(argv)
    data_dir = find_data_dir(args.data_dir)
    if data_dir is None:
        print("no MNIST t10k files found: give --data-dir or set FLOWLAB_DATA_DIR", file=sys.stderr)
        return 1
    context = {
        "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.amp_quality " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": args.device,
        "threads": args.threads,
        "steps": args.steps,
    }
    runs = [(False, args.seed), (True, args.seed)]
    if args.noise_seed >= 0:
        runs.append((False, args.noise_seed))
    results = []
    for amp, seed in runs:
        print(
            f"training {'bf16' if amp else 'fp32'} seed {seed} for {args.steps} steps",
            file=sys.stderr,
            flush=True,
        )
        results.append(train_once(data_dir, args.steps, amp, seed, args.device, args.threads))
        print(f"  held-out bits/dim {results[-1]['bits_per_dim']:.4f}", file=sys.stderr, flush=True)
    text = markdown(results, context)
    report.publish(text, args.results, append=not args.no_results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
