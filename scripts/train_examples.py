"""Trains the example runs shipped in examples/runs/: one small run of each flow family on real digits.

    python scripts/train_examples.py                   # all of them, one thread (about 10-15 minutes)
    python scripts/train_examples.py --only glow nice  # some of them (names without "example-")
    python scripts/train_examples.py --data-dir ../shared/data/mnist

Each example is ``python main.py ... --holdout 1000 --threads 1`` on MNIST's 10,000 test digits (the
first 9,000 train, the last 1,000 are held out), run in a temporary runs folder; its last checkpoint is
then exported (safetensors + config.json, no pickle) into ``examples/runs/example-<name>/export/``
beside the run's config.json, metrics.jsonl, status.json and samples.png, and ``example.json`` records
the command and the held-out bits/dim its last evaluation measured. Training is deterministic (seeded
batches and noise), so a rerun on the same machine reproduces the weights; the dashboard lists these
folders as read-only examples (``flows.training.examples``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flows.training import runs  # noqa: E402
from flows.training.examples import EXAMPLE_FILE, EXAMPLE_PREFIX, examples_dir  # noqa: E402
from flows.training.export import EXPORT_DIR, export_run  # noqa: E402

#: name -> (what it shows, the main.py flags beyond the common ones). Small on purpose: a few MB in all.
EXAMPLES: dict[str, tuple[str, list[str]]] = {
    "realnvp": (
        "the seed's RealNVP on flattened digits, 2 blocks of 64 hidden units",
        ["--model", "realnvp", "--hidden", "64", "--blocks", "2", "--steps", "1500"],
    ),
    "nice": (
        "NICE (additive couplings and a final scaling), 2 blocks of 64 hidden units",
        ["--model", "nice", "--hidden", "64", "--blocks", "2", "--steps", "1500"],
    ),
    "conv-realnvp": (
        "multi-scale ConvRealNVP, the CPU preset",
        ["--model", "conv-realnvp", "--steps", "800"],
    ),
    "glow": ("Glow, the CPU preset", ["--model", "glow", "--steps", "600"]),
    "glow-conditional": (
        "class-conditional Glow, the CPU preset: pick the digit to draw",
        ["--model", "glow", "--conditional", "--steps", "600"],
    ),
}
#: Flags every example shares: the 9,000 / 1,000 split of the test digits, one thread, no judge.
COMMON = ["--dataset", "mnist", "--holdout", "1000", "--threads", "1", "--seed", "0", "--score-samples", "0"]
#: The run-folder files copied beside the export.
COPIED = (runs.CONFIG_FILE, runs.METRICS_FILE, runs.STATUS_FILE, runs.SAMPLES_FILE)


def train_one(name: str, data_dir: str | None, work: Path) -> Path:
    """Trains example ``name`` in ``work`` and writes ``examples/runs/example-<name>/``; returns it."""
    argv = [*EXAMPLES[name][1], *COMMON, "--runs-dir", str(work), "--run-name", name, "--no-progress"]
    env = dict(os.environ, FLOWLAB_NO_SAMPLE_SCORE="1")
    if data_dir:
        env["FLOWLAB_DATA_DIR"] = str(Path(data_dir).resolve())  # not a flag: config.json keeps no path
    print(f"== {EXAMPLE_PREFIX}{name}: python main.py {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, str(REPO / "main.py"), *argv], env=env, cwd=REPO, check=True)
    return package(name, work / name)


def package(name: str, run_dir: Path) -> Path:
    """Writes the finished run ``run_dir`` of example ``name`` as ``examples/runs/example-<name>/``."""
    description, flags = EXAMPLES[name]
    run_name = EXAMPLE_PREFIX + name
    evals = [line for line in runs.read_metrics(run_dir) if line.get("kind") == "eval"]
    if not evals:
        raise RuntimeError(f"{run_dir} has no evaluation in its metrics; nothing to record")
    target = examples_dir() / run_name
    staging = examples_dir() / f".{run_name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in COPIED:
        if (run_dir / file).is_file():
            shutil.copy2(run_dir / file, staging / file)
    export_run(run_dir, "last", staging / EXPORT_DIR)
    runs.write_json(
        staging / EXAMPLE_FILE,
        {
            "description": description,
            "command": "python main.py " + " ".join([*flags, *COMMON]),
            "step": int(evals[-1]["step"]),
            "test_bits_per_dim": evals[-1]["test_bits_per_dim"],
            "held_out": "the last 1,000 of MNIST's 10,000 test digits (trained on the first 9,000)",
        },
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # the finished folder appears whole
    print(f"   {target}: {evals[-1]['test_bits_per_dim']:.3f} held-out bits/dim", flush=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(EXAMPLES), help="train only these examples")
    parser.add_argument(
        "--data-dir", help="folder of MNIST's t10k IDX files (default: $FLOWLAB_DATA_DIR, else data/mnist)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flowlab-examples-") as work:
        for name in args.only or list(EXAMPLES):
            train_one(name, args.data_dir, Path(work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
