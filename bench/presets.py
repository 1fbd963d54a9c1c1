"""``python -m bench.presets``: the preset search, settings tried per family at one wall-time budget.

Each candidate is the family's current CPU preset (``flows.registry``) with a few settings changed,
trained by the loop of :mod:`bench.quality` (same data, seed, schedule over elapsed time) for the
same budget; the table of held-out bits/dim (with the sample score for image flows) is printed and
appended to bench/PRESETS.md. The preset kept in the registry is the best held-out bits/dim row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import torch

from . import quality
from .run import REPO_ROOT, find_data_dir

DEFAULT_RESULTS = REPO_ROOT / "bench" / "PRESETS.md"
RESULTS_HEADER = (
    "# Preset search (python -m bench.presets)\n\n"
    "One section per run, newest last; each row is a family's CPU preset with the settings shown changed.\n"
)

#: Settings tried per family, on top of its CPU preset ({} is the preset itself).
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "glow": [
        {},
        {"steps_per_level": 8},
        {"hidden_channels": 32},
        {"hidden_channels": 96},
        {"amp": False},
        {"lr": 2e-3},
        {"ema_decay": 0.999},
    ],
    "convrealnvp": [
        {},
        {"steps_per_level": 4},
        {"hidden_channels": 64},
        {"residual_blocks": 1},
        {"lr": 2e-3},
    ],
    "realnvp": [
        {},
        {"hidden": [128, 128]},
        {"weight_decay": 0.05},
        {"ema_decay": 0.999},
        {"ema_decay": 0.999, "augment_shift": 1},
        {"ema_decay": 0.999, "augment_shift": 2},
    ],
    "nice": [{}, {"hidden": [128, 128]}, {"ema_decay": 0.999, "augment_shift": 2}],
}


#: Held-out evaluations during each candidate's run (the lowest is reported beside the final figure).
CURVE_POINTS = 10


def _describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in overrides.items()) or "the preset"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.presets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="glow,convrealnvp", help=f"from {list(CANDIDATES)}")
    parser.add_argument("--minutes", type=float, default=2.0, help="wall-time budget of every candidate")
    parser.add_argument(
        "--candidates", help="which of each family's candidates to try, by position (0: the preset): 0,4,5"
    )
    parser.add_argument("--data-dir", type=Path, help="folder with MNIST's t10k IDX files")
    parser.add_argument("--samples", type=int, default=500, help="samples scored per image-flow run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="a remark on the machine, written into the section")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.families.split(",") if name.strip()]
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(CANDIDATES)}")
    torch.set_num_threads(args.threads)

    from flows.evaluation import load_judge

    folder = find_data_dir(args.data_dir)
    train, heldout, split = quality.load_split("mnist", Path(folder))
    judge = load_judge("mnist", folder, on_progress=lambda message: print(message, file=sys.stderr))
    started = dt.datetime.now(dt.timezone.utc)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"## {started:%Y-%m-%d %H:%M} UTC: `python -m bench.presets "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        "",
        f"torch {torch.__version__}, {args.threads} threads on {cores} cores"
        + (f" ({args.note})" if args.note else "")
        + f"; {split}; {args.minutes:g} minutes of training per row; samples at temperature "
        f"{quality.TEMPERATURE}, {args.samples} scored.",
        "",
        "| family | changed from the preset | settings | params | steps | held-out bits/dim "
        f"| lowest of {CURVE_POINTS} evaluations (step) | recognised | class entropy bits | Frechet |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        chosen = [int(i) for i in args.candidates.split(",")] if args.candidates else None
        for position, overrides in enumerate(CANDIDATES[name]):
            if chosen is not None and position not in chosen:
                continue
            family = quality.flow_lab_family(name, overrides)
            print(f"{family.name}: {_describe(overrides)}", file=sys.stderr, flush=True)
            result = quality.train_for(family, train, heldout, args.minutes * 60, args.seed, CURVE_POINTS)
            model = result.pop("model")
            _, lowest_step, lowest_bits = min(result["curve"], key=lambda point: point[2])
            recognised = entropy = frechet = ""
            if not family.flat:
                with torch.random.fork_rng():
                    torch.manual_seed(args.seed)
                    score = judge.score(family.sample(model, args.samples, quality.TEMPERATURE))
                recognised, frechet = f"{score.recognised:.0%}", f"{score.frechet:.1f}"
                entropy = f"{score.class_entropy_bits:.2f}"
            row = (
                f"| {family.name} | {_describe(overrides)} | {quality.describe(family.settings)} "
                f"| {quality.parameter_count(model):,} | {result['steps']:,} | {result['bits_per_dim']:.3f} "
                f"| {lowest_bits:.3f} ({lowest_step:,}) | {recognised} | {entropy} | {frechet} |"
            )
            print(row, flush=True)
            lines.append(row)
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if not args.no_results:
        quality._append_to(args.results, text, RESULTS_HEADER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
