"""``python -m bench.quality``: held-out bits/dim and sample quality at equal wall time, against normflows.

For each dataset, family and wall-time budget: one training run of exactly that many minutes of
training time (evaluations are not counted), with one shared recipe for every model so only the model
differs: random batches of dequantized pixels, AdamW, a linear warm-up of 100 steps, then a cosine
decay to 5% of the peak laid over the *elapsed time* of the budget, gradient norm clipped to 100,
loss = -mean log p(x) of x in [0, 1)^784 (a logit layer maps each model's output to pixels: Flow
Lab's ``Logit`` for its own models, normflows' ``transforms.Logit`` in its Glow). Every run reports:
held-out bits/dim at the end (and along the way, for the time each model takes to reach given
levels), training images/s, and the sample score of :mod:`flows.evaluation` on samples at
temperature 0.7, beside the same score for held-out real images; a sample grid per run is written
to bench/quality/. The section is appended to bench/QUALITY.md.

Families: Flow Lab's MLP RealNVP (the trainer's default model), ConvRealNVP and Glow
(``flows.image``), and normflows' Glow built as its multi-scale Glow example shows (``GlowBlock`` x K,
``Squeeze``, ``Merge``, ``DiagGaussian`` per level, ``MultiscaleFlow``), with its hidden channels
chosen so its parameter count is nearest Flow Lab's Glow's, at the same learning rate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .run import REPO_ROOT, find_data_dir

DEFAULT_RESULTS = REPO_ROOT / "bench" / "QUALITY.md"
GRID_DIR = REPO_ROOT / "bench" / "quality"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
RESULTS_HEADER = (
    "# Sample quality at equal wall time (python -m bench.quality)\n\n"
    "One section per run, newest last; see bench/quality.py for what is measured.\n"
)
#: MNIST here is the 10,000-digit test split only: train on the first 9,000, hold out the last 1,000.
MNIST_HELDOUT = 1000
#: Held-out images of the evaluations along the way (the final one uses the whole held-out set).
CURVE_EVAL_IMAGES = 1000
LEVELS = (3.0, 2.5, 2.0, 1.5, 1.35)
TEMPERATURE = 0.7
WARMUP_STEPS = 100
MIN_LR_FRACTION = 0.05
#: normflows' Logit alpha, the same as Flow Lab's (TrainConfig.logit_alpha)
LOGIT_ALPHA = 0.05
MAX_BAD_STEPS = 20


@dataclass
class Family:
    """One model family: how to build it and the training settings it runs with."""

    name: str
    build: Callable[[], nn.Module]
    settings: dict[str, Any]  # lr, batch_size, amp, weight_decay, grad_clip, ema_decay
    flat: bool  # True: the model takes [B, 784]; False: [B, 1, 28, 28]
    library: str  # "Flow Lab" or "normflows"

    def log_prob(self, model: nn.Module, x: Tensor) -> Tensor:
        """log p(x) [B] of pixels x [B, 1, 28, 28] in [0, 1)."""
        if self.library == "normflows":
            return model.log_prob(x, None)
        return model.logProbability(x.reshape(len(x), -1) if self.flat else x)

    @torch.no_grad()
    def sample(self, model: nn.Module, count: int, temperature: float) -> Tensor:
        """``count`` samples [count, 28, 28] at ``temperature`` (the prior's draws scaled by it)."""
        if self.library == "normflows":
            images, _ = model.sample(count, temperature=temperature)
        else:
            z = model.prior.sample(count) * temperature
            images, _ = model.forward(z)
        return images.reshape(count, 28, 28).clamp(0, 1)


#: The bench's names for the registry's families (``flows.registry``), and the label in the tables.
FLOW_LAB = {
    "realnvp": ("realnvp", "Flow Lab MLP RealNVP"),
    "nice": ("nice", "Flow Lab NICE"),
    "convrealnvp": ("conv-realnvp", "Flow Lab ConvRealNVP"),
    "glow": ("glow", "Flow Lab Glow"),
}
#: Bench-only variants: a family with settings changed, to compare against its preset in one run.
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "realnvp-small": (
        "realnvp",
        {"hidden": [128, 128], "weight_decay": 0.05, "ema_decay": 0.999},
        "Flow Lab MLP RealNVP small (hidden 128 128)",
    ),
    # the Glow preset without bf16 autocast, to weigh bf16 against float32 at equal wall time
    "glow-fp32": ("glow", {"amp": False}, "Flow Lab Glow in float32"),
}
#: The training settings the bench's loop reads from a TrainConfig.
LOOP_SETTINGS = ("lr", "batch_size", "amp", "weight_decay", "grad_clip", "ema_decay", "augment_shift")


def flow_lab_config(model: str, overrides: dict[str, Any] | None = None):
    """The TrainConfig ``main.py --model <model>`` starts from on a CPU (its family's CPU preset),
    with ``overrides`` on top (the preset search tries settings this way)."""
    from flows.training import preset_config

    return preset_config({"model": model, "device": "cpu", "dataset": "mnist", **(overrides or {})})


def flow_lab_family(key: str, overrides: dict[str, Any] | None = None, label: str | None = None) -> Family:
    """A Flow Lab family built exactly as ``main.py --model`` builds it (registry preset, Logit last)."""
    from flows.registry import get_family
    from flows.training import build_model

    model, name = FLOW_LAB[key]
    config = flow_lab_config(model, overrides).validate()
    flat = not get_family(model).image_shaped
    settings = {name_: getattr(config, name_) for name_ in LOOP_SETTINGS}
    return Family(label or name, lambda: build_model(config), settings, flat, "Flow Lab")


def normflows_glow(hidden_channels: int, levels: int = 2, steps: int = 8) -> nn.Module:
    """normflows' multi-scale Glow, as its Glow example builds it, for [1, 28, 28] and no classes."""
    import normflows as nf

    channels, size = 1, 28
    q0, merges, flows = [], [], []
    for i in range(levels):
        flows_ = [
            nf.flows.GlowBlock(
                channels * 2 ** (levels + 1 - i), hidden_channels, split_mode="channel", scale=True
            )
            for _ in range(steps)
        ]
        flows_ += [nf.flows.Squeeze()]
        flows += [flows_]
        if i > 0:
            merges += [nf.flows.Merge()]
            latent_shape = (
                channels * 2 ** (levels - i),
                size // 2 ** (levels - i),
                size // 2 ** (levels - i),
            )
        else:
            latent_shape = (channels * 2 ** (levels + 1), size // 2**levels, size // 2**levels)
        q0 += [nf.distributions.DiagGaussian(latent_shape)]
    return nf.MultiscaleFlow(q0, flows, merges, transform=nf.transforms.Logit(LOGIT_ALPHA), class_cond=False)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_normflows_width(target: int, levels: int, steps: int) -> int:
    """normflows' Glow hidden channels (a multiple of 8) whose parameter count is nearest ``target``."""

    def gap(width: int) -> int:
        return abs(parameter_count(normflows_glow(width, levels, steps)) - target)

    return min(range(8, 257, 8), key=gap)


def families(names: list[str]) -> list[Family]:
    """The families named, in the order given."""
    choices = [*FLOW_LAB, *VARIANTS, "normflows-glow"]
    unknown = [name for name in names if name not in choices]
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {choices}")
    return [_family(name) for name in names]


def _family(name: str) -> Family:
    if name == "normflows-glow":
        return _normflows_family()
    if name in VARIANTS:
        key, overrides, label = VARIANTS[name]
        return flow_lab_family(key, overrides, label)
    return flow_lab_family(name)


def _normflows_family() -> Family:
    """normflows' Glow with Flow Lab Glow's scales and steps, its width matched to Flow Lab Glow's
    parameter count, trained with the same settings in float32 (normflows has no autocast path)."""
    glow = flow_lab_family("glow")
    config = flow_lab_config("glow")
    levels, steps = config.levels, config.steps_per_level
    width = matched_normflows_width(parameter_count(glow.build()), levels, steps)
    settings = {**glow.settings, "amp": False, "ema_decay": 0.0}
    return Family(
        f"normflows Glow (hidden {width})",
        lambda: normflows_glow(width, levels, steps),
        settings,
        False,
        "normflows",
    )


def load_split(dataset: str, data_dir: Path) -> tuple[Tensor, Tensor, str]:
    """uint8 ``(train [N, 28, 28], held-out [M, 28, 28], description)``."""
    from flows.data import load_mnist

    if dataset == "fashion-mnist":
        train, _ = load_mnist(data_dir, "train", dataset)
        test, _ = load_mnist(data_dir, "test", dataset)
        return train, test, f"Fashion-MNIST {len(train):,} / {len(test):,}"
    images, _ = load_mnist(data_dir, "test", dataset)
    cut = len(images) - MNIST_HELDOUT
    return images[:cut], images[cut:], f"MNIST test split {cut:,} / {MNIST_HELDOUT:,}"


@torch.no_grad()
def held_out_bits(family: Family, model: nn.Module, images: Tensor) -> float:
    """Bits/dim of uint8 ``images`` under ``model``, dequantized with a fixed seed, in batches of 500."""
    from flows.data import bits_per_dim, dequantize

    model.eval()
    generator = torch.Generator().manual_seed(1234)
    total = 0.0
    for chunk in images.split(500):
        x = dequantize(chunk, generator).unsqueeze(1)
        total += float(family.log_prob(model, x).double().sum())
    model.train()
    return float(bits_per_dim(torch.tensor(total / len(images)), 28 * 28))


def learning_rate(peak: float, step: int, fraction: float) -> float:
    """Warm-up over the first steps, then cosine over the elapsed fraction of the time budget."""
    warmup = min(1.0, (step + 1) / WARMUP_STEPS)
    cosine = MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))
    return peak * warmup * cosine


def train_for(
    family: Family, train: Tensor, heldout: Tensor, seconds: float, seed: int, curve_points: int
) -> dict[str, Any]:
    """Trains one model for ``seconds`` of training time with ``family.settings`` (bf16 autocast and a
    moving average of the weights where they are on); returns its figures and the model, holding the
    averaged weights where there is an average."""
    from flows.data import dequantize, random_batch, random_shift
    from flows.training.ema import WeightAverage

    settings = family.settings
    lr, batch_size = settings["lr"], settings["batch_size"]
    torch.manual_seed(seed)
    model = family.build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=settings["weight_decay"])
    average = WeightAverage(model, settings["ema_decay"]) if settings["ema_decay"] else None
    generator = torch.Generator().manual_seed(seed)
    curve_images = heldout[:CURVE_EVAL_IMAGES]
    clock, step, bad_steps, images_seen = 0.0, 0, 0, 0
    curve: list[tuple[float, int, float]] = []
    next_eval = seconds / curve_points

    def evaluate(images: Tensor) -> float:
        if average is None:
            return held_out_bits(family, model, images)
        with average.applied(model):
            return held_out_bits(family, model, images)

    model.train()
    while clock < seconds:
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(lr, step, clock / seconds)
        rows = random_batch(train, batch_size, generator)
        if settings.get("augment_shift"):
            rows = random_shift(rows, settings["augment_shift"], generator)
        x = dequantize(rows, generator).unsqueeze(1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings["amp"]):
            loss = -family.log_prob(model, x).float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings["grad_clip"] or math.inf)
        if math.isfinite(loss.item()) and math.isfinite(norm.item()):
            optimizer.step()
            if average is not None:
                average.update(model)
            step += 1
            images_seen += batch_size
        else:
            bad_steps += 1
        clock += time.perf_counter() - started
        if bad_steps > MAX_BAD_STEPS:
            break
        if clock >= next_eval or clock >= seconds:
            curve.append((clock, step, evaluate(curve_images)))
            next_eval += seconds / curve_points
    final = evaluate(heldout) if bad_steps <= MAX_BAD_STEPS else float("nan")
    if average is not None:
        model.load_state_dict(average.average)
    return {
        "model": model.eval(),
        "steps": step,
        "train_seconds": clock,
        "images_per_sec": images_seen / max(clock, 1e-9),
        "bits_per_dim": final,
        "best_curve_bits": min((bits for _, _, bits in curve), default=float("nan")),
        "curve": curve,
        "bad_steps": bad_steps,
    }


def describe(settings: dict[str, Any]) -> str:
    """The training settings of a row, in a few words: "lr 1e-3, batch 64, bf16, EMA 0.999"."""
    words = [f"lr {settings['lr']:g}", f"batch {settings['batch_size']}"]
    words.append("bf16" if settings["amp"] else "fp32")
    if settings["weight_decay"]:
        words.append(f"wd {settings['weight_decay']:g}")
    if settings["ema_decay"]:
        words.append(f"EMA {settings['ema_decay']:g}")
    if settings.get("augment_shift"):
        words.append(f"shifts up to {settings['augment_shift']} px")
    return ", ".join(words)


def time_to_levels(curve: list[tuple[float, int, float]]) -> dict[float, float | None]:
    """Training seconds at the first evaluation at or under each level of LEVELS (None: not reached)."""
    return {level: next((t for t, _, bits in curve if bits <= level), None) for level in LEVELS}


def markdown(context: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    levels = " | ".join(f"s to {level}" for level in LEVELS)
    lines = [
        f"## {context['started']}: `{context['command']}`",
        "",
        f"torch {torch.__version__}, {context['threads']} threads on {context['cores']} cores, CPU"
        f"{context['note']}; load average at the start "
        f"{context['load']}. Each Flow Lab model with its family's CPU preset (flows.registry, as `main.py "
        "--model <family>` starts; normflows' Glow with Flow Lab Glow's settings in float32): AdamW, warm-up "
        f"{WARMUP_STEPS} steps then cosine over the budget's elapsed time to {MIN_LR_FRACTION:.0%} of the "
        "peak lr. Samples at "
        f"temperature {TEMPERATURE}; score by flows.evaluation (recognised = top class p >= 0.9; entropy of "
        "the predicted classes, 3.32 bits = all ten evenly; Frechet distance of the judge's features to "
        "held-out real images, lower is better). Times to bits/dim levels come from evaluations on "
        f"{CURVE_EVAL_IMAGES:,} held-out images {context['curve_points']} times per run.",
        "",
    ]
    for dataset, judge_line in context["judges"].items():
        lines.append(f"- {dataset}: {judge_line}")
    lines += [
        "",
        "| data | model | settings | params | budget min | steps | images/s | held-out bits/dim "
        f"| recognised | class entropy bits | Frechet | {levels} | grid |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        + " | ".join("---:" for _ in LEVELS)
        + " | --- |",
    ]
    for row in rows:
        score = row["score"]
        reached = " | ".join("" if t is None else f"{t:.0f}" for t in row["levels"].values())
        lines.append(
            f"| {row['data']} | {row['family']} | {row['settings']} | {row['params']:,} | {row['minutes']:g} "
            f"| {row['steps']:,} "
            f"| {row['images_per_sec']:.0f} | {row['bits_per_dim']:.3f} | {score['recognised']:.0%} "
            f"| {score['class_entropy_bits']:.2f} | {score['frechet']:.1f} | {reached} "
            f"| [png]({row['grid']}) |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1-minute budgets, MNIST, 4 evaluations a run, 500 samples (6 minutes)",
    )
    parser.add_argument("--budgets", default="5,10,30", help="wall-time budgets in minutes, comma-separated")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--families", default="realnvp,convrealnvp,glow,normflows-glow")
    parser.add_argument("--data-dir", type=Path, help="folder with MNIST's t10k IDX files")
    parser.add_argument("--fashion-dir", type=Path, default=FASHION_DIR)
    parser.add_argument("--samples", type=int, default=1000, help="samples scored per run (default 1000)")
    parser.add_argument("--curve-points", type=int, default=10, help="evaluations along each run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grids", type=Path, default=GRID_DIR, help="folder for the sample grids")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--note", default="", help="a remark on the machine, written into the section")
    args = parser.parse_args(argv)
    if args.quick:
        args.budgets, args.datasets, args.curve_points, args.samples = "1", "mnist", 4, 500
    budgets = [float(value) for value in args.budgets.split(",")]
    chosen = families([name.strip() for name in args.families.split(",") if name.strip()])
    torch.set_num_threads(args.threads)

    from flows.evaluation import load_judge
    from flows.training.images import image_grid, write_png

    folders = {"mnist": find_data_dir(args.data_dir), "fashion-mnist": args.fashion_dir}
    started = dt.datetime.now(dt.timezone.utc)
    stamp = started.strftime("%Y%m%d-%H%M")
    context: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.quality " + " ".join(sys.argv[1:] if argv is None else argv),
        "threads": args.threads,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "note": f" ({args.note})" if args.note else "",
        "load": ", ".join(f"{value:.1f}" for value in _load_average()),
        "curve_points": args.curve_points,
        "judges": {},
    }
    rows: list[dict[str, Any]] = []
    args.grids.mkdir(parents=True, exist_ok=True)
    for dataset in [name.strip() for name in args.datasets.split(",") if name.strip()]:
        folder = folders.get(dataset)
        if folder is None or not Path(folder).is_dir():
            print(
                f"{dataset}: no data folder found, skipped (give --data-dir / --fashion-dir)", file=sys.stderr
            )
            continue
        train, heldout, split = load_split(dataset, Path(folder))
        judge = load_judge(dataset, folder, on_progress=lambda message: print(message, file=sys.stderr))
        real = judge.real_score(min(args.samples, len(heldout)))
        context["judges"][split] = (
            f"judge accuracy {judge.accuracy:.1%} on {judge.info['heldout_images']:,} held-out images; "
            f"{real.count} real held-out images score: recognised {real.recognised:.0%}, class entropy "
            f"{real.class_entropy_bits:.2f} bits, Frechet {real.frechet:.1f} (the reference)"
        )
        for minutes in budgets:
            for family in chosen:
                print(f"{split}: {family.name} for {minutes:g} min", file=sys.stderr, flush=True)
                result = train_for(family, train, heldout, minutes * 60, args.seed, args.curve_points)
                model = result.pop("model")
                with torch.random.fork_rng():
                    torch.manual_seed(args.seed)
                    samples = family.sample(model, args.samples, TEMPERATURE)
                score = judge.score(samples)
                slug = family.name.lower().split(" (")[0].replace(" ", "-")
                grid = args.grids / f"{stamp}-{dataset}-{slug}-{minutes:g}min.png"
                write_png(grid, image_grid(samples[:64], columns=8))
                rows.append(
                    {
                        **result,
                        "data": split,
                        "family": family.name,
                        "settings": describe(family.settings),
                        "params": parameter_count(model),
                        "minutes": minutes,
                        "score": score.to_dict(),
                        "levels": time_to_levels(result["curve"]),
                        "grid": _relative(grid, args.results.parent),
                    }
                )
                print(
                    f"  {result['steps']} steps, held-out {result['bits_per_dim']:.3f} bits/dim, "
                    f"recognised {score.recognised:.0%}, Frechet {score.frechet:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
    if not rows:
        print("nothing was run: no data found", file=sys.stderr)
        return 1
    text = markdown(context, rows)
    if args.no_results:
        print(text)
    else:
        print(text)
        _append(args.results, text)
    return 0


def _relative(path: Path, folder: Path) -> Path:
    """``path`` relative to ``folder`` where it lies inside it (for a Markdown link), else as it is."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return path


def _load_average() -> tuple[float, ...]:
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return ()


def _append(path: Path, section: str) -> None:
    _append_to(path, section, RESULTS_HEADER)


def _append_to(path: Path, section: str, header: str) -> None:
    """Appends ``section`` to the Markdown file ``path`` (``header`` first where it is new), atomically."""
    from flows.infra import atomic_write_bytes

    existing = path.read_text() if path.exists() else header
    atomic_write_bytes(path, (existing.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n").encode())


if __name__ == "__main__":
    raise SystemExit(main())
