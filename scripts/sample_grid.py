"""Writes a PNG grid of a run's samples at a temperature: ``python scripts/sample_grid.py RUN_DIR OUT.png``.

    python scripts/sample_grid.py runs/<run-id> docs/samples-glow.png --temperature 0.7 --count 64

A class-conditional run draws each class in turn, one per column. Uses the run's best checkpoint when it
has one (``--checkpoint last`` for the last).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows import sampling
from flows.image.models import grid_labels
from flows.training import runs
from flows.training.images import image_grid, write_png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", choices=("best", "last"), default=None)
    parser.add_argument("--zoom", type=int, default=2, help="pixels per pixel, so the grid is not blurred")
    args = parser.parse_args(argv)
    which = args.checkpoint or ("best" if runs.checkpoint_path(args.run_dir, "best").is_file() else "last")
    model, config = runs.load_run_model(args.run_dir, which)
    if not config.is_image:
        parser.error(f"{args.run_dir} is a 2D toy run; this draws digits")
    labels = grid_labels(model, args.count)
    columns = model.num_classes if labels is not None else math.ceil(math.sqrt(args.count))
    with torch.no_grad():
        x = sampling.sample(model, args.count, args.temperature, args.seed, labels)
    grid = image_grid(x.reshape(args.count, 28, 28).clamp(0, 1), columns=columns)
    grid = grid.repeat_interleave(args.zoom, 0).repeat_interleave(args.zoom, 1)
    write_png(args.out, grid)
    print(
        f"{args.out}: {args.count} samples of {args.run_dir} ({which}.pt) at temperature {args.temperature}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
