"""``python -m bench``: Flow Lab against normflows, nflows, zuko and plain PyTorch, side by side.

One run measures, for every implementation of the reference workload (bench/workloads.py), each in
its own worker process: training ms/step and images/s, sampling images/s (1,024 samples, no grad),
peak resident memory, and the achieved GFLOP/s against the fp32 matrix-multiply rates (the 2048
cube and the workload's 128 x 1024 x 1024 shape) measured in the same run. Chunks of steps are
interleaved, A B C ... then ... C B A, so that machine drift cancels in the ratios. Then the time to
quality: bits/dim on 1,000 held-out real MNIST digits after the same wall-clock budget of training
on the other 9,000, for Flow Lab and normflows (and Flow Lab's bf16 path after the same number of
steps as its fp32 path). It prints a table and appends the run to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.training.runs import atomic_write_bytes

from . import report
from .workloads import BATCH_SIZE, HIDDEN, IMPLEMENTATIONS, matmul_flops_per_image, training_flops_per_image

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
SAMPLES = 1024

DEFAULT_IMPLS = ("flowlab", "flowlab-bf16", "plain", "plain-fused", "normflows", "nflows", "zuko")
QUICK_IMPLS = ("flowlab", "flowlab-bf16", "plain", "normflows", "nflows", "zuko")
ABLATION_IMPLS = ("flowlab-untuned", "flowlab-fused-only")
QUALITY_IMPLS = ("flowlab", "normflows")

MATMUL_SHAPES = (
    (128, 1024, 1024, "float32"),
    (2048, 2048, 2048, "float32"),
    (128, 1024, 1024, "bfloat16"),
)
MM_WORKLOAD, MM_CUBE, MM_BF16 = (f"{m}x{k}x{n} {d}" for m, k, n, d in MATMUL_SHAPES)


class WorkerError(RuntimeError):
    """A worker process failed to start or to carry out a command."""


class WorkerProcess:
    """A running ``python -m bench.worker`` and its JSON-lines channel."""

    def __init__(self, impl: str, args: argparse.Namespace, log_dir: Path) -> None:
        self.impl = impl
        command = [
            sys.executable,
            "-m",
            "bench.worker",
            "--impl",
            impl,
            "--device",
            args.device,
            "--threads",
            str(args.threads),
            "--batch",
            str(args.batch),
            "--hidden",
            args.hidden,
            "--seed",
            str(args.seed),
            "--data",
            str(args.data_dir or ""),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(args.threads)
        self.log_path = log_dir / f"{impl}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        self.info: dict[str, Any] = {}

    def _read(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise WorkerError(f"{self.impl} worker exited ({self.process.returncode}): {self.log_tail()}")
        message = json.loads(line)
        if "error" in message:
            raise WorkerError(f"{self.impl}: {message['error']}")
        return message

    def ready(self) -> dict[str, Any]:
        self.info = self._read()["info"]
        return self.info

    def call(self, cmd: str, **arguments: Any) -> dict[str, Any]:
        self.process.stdin.write(json.dumps({"cmd": cmd, **arguments}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def log_tail(self, lines: int = 5) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class Measurements:
    """Everything one run measured, raw; :mod:`bench.report` turns it into tables."""

    impls: list[str]
    train: dict[str, list[list[float]]] = field(default_factory=dict)  # impl -> per round step times (s)
    faults: dict[str, list[float]] = field(default_factory=dict)  # impl -> page faults per step, per round
    matmul: list[dict[str, float]] = field(default_factory=list)  # per round: shape -> GFLOP/s
    sample: dict[str, list[float]] = field(default_factory=dict)  # impl -> seconds per 1,024 samples
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Flow Lab vs normflows, nflows, zuko and plain PyTorch on the reference RealNVP.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run (under two minutes on 2 idle cores)"
    )
    parser.add_argument("--impls", help=f"comma-separated subset of: {', '.join(IMPLEMENTATIONS)}")
    parser.add_argument("--ablation", action="store_true", help="add Flow Lab with default Adam / malloc")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 6, quick 2)")
    parser.add_argument("--steps", type=int, help="training steps per implementation per round (5, quick 3)")
    parser.add_argument("--warmup", type=int, help="untimed warm-up steps per implementation (3, quick 2)")
    parser.add_argument(
        "--sample-rounds", type=int, help="timed 1,024-sample draws per implementation (3, quick 1)"
    )
    parser.add_argument(
        "--matmul-seconds", type=float, help="seconds per matmul shape per round (1, quick 0.3)"
    )
    parser.add_argument(
        "--quality-seconds",
        type=float,
        help="training budget per implementation for bits/dim (180, quick 10; 0: skip)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="folder with MNIST's t10k IDX files (default ../shared/data/mnist)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per worker (default 2)")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="training batch size (default 128)")
    parser.add_argument(
        "--hidden",
        default=",".join(map(str, HIDDEN)),
        help="hidden widths of every net (reference: 1024,1024)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help="Markdown file the run is appended to"
    )
    parser.add_argument(
        "--no-results", action="store_true", help="print only; do not append to the results file"
    )
    parser.add_argument("--json", type=Path, help="also write the raw measurements to this JSON file")
    args = parser.parse_args(argv)

    quick = args.quick
    defaults = {
        "rounds": 2 if quick else 6,
        "steps": 3 if quick else 5,
        "warmup": 2 if quick else 3,
        "sample_rounds": 1 if quick else 3,
        "matmul_seconds": 0.3 if quick else 1.0,
        "quality_seconds": 10.0 if quick else 180.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    impls = args.impls.split(",") if args.impls else list(QUICK_IMPLS if quick else DEFAULT_IMPLS)
    if args.ablation:
        impls += [name for name in ABLATION_IMPLS if name not in impls]
    unknown = [name for name in impls if name not in IMPLEMENTATIONS]
    if unknown:
        parser.error(
            f"unknown implementation(s) {', '.join(unknown)}; choose from {', '.join(IMPLEMENTATIONS)}"
        )
    args.impl_list = list(dict.fromkeys(impls))
    for name in ("rounds", "steps", "sample_rounds", "threads", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0 or args.matmul_seconds <= 0 or args.quality_seconds < 0:
        parser.error("--warmup and --quality-seconds must be >= 0 and --matmul-seconds > 0")
    try:
        widths = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        parser.error(
            f"--hidden must be comma-separated positive widths such as 1024,1024, got {args.hidden!r}"
        )
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        parser.error(f"--device must be cpu or cuda, got {args.device!r}")
    args.data_dir = find_data_dir(args.data_dir)
    return args


def find_data_dir(given: Path | None) -> Path | None:
    """The folder of t10k-images-idx3-ubyte(.gz): ``given``, $FLOWLAB_DATA_DIR or ../shared/data/mnist."""
    candidates = (
        [given] if given else [os.environ.get("FLOWLAB_DATA_DIR"), REPO_ROOT.parent / "shared/data/mnist"]
    )
    for candidate in filter(None, candidates):
        folder = Path(candidate)
        if any((folder / name).is_file() for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz")):
            return folder.resolve()
    return None


def interleaved(names: list[str], round_index: int) -> list[str]:
    """A B C ... in even rounds, ... C B A in odd ones: linear drift cancels over each pair of rounds."""
    return names if round_index % 2 == 0 else names[::-1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start_workers(args: argparse.Namespace, log_dir: Path, data: Measurements) -> dict[str, WorkerProcess]:
    workers = {name: WorkerProcess(name, args, log_dir) for name in [*args.impl_list, "matmul"]}
    ready = {}
    for name, worker in workers.items():
        try:
            data.info[name] = worker.ready()
            ready[name] = worker
        except WorkerError as error:
            data.skipped[name] = str(error)
            log(f"  skipped {name}: {error}")
            worker.close()
    if "matmul" not in ready:
        for worker in ready.values():
            worker.close()
        raise WorkerError(f"the matmul worker failed: {data.skipped.get('matmul')}")
    return ready


def measure_speed(args: argparse.Namespace, workers: dict[str, WorkerProcess], data: Measurements) -> None:
    impls = [name for name in data.impls if name in workers]
    shapes = [list(shape) for shape in MATMUL_SHAPES]
    log(f"warm-up: {args.warmup} steps each")
    for name in impls:
        workers[name].call("train", steps=args.warmup)
    for round_index in range(args.rounds):
        log(f"round {round_index + 1}/{args.rounds} (load average {os.getloadavg()[0]:.1f})")
        for name in interleaved([*impls, "matmul"], round_index):
            if name == "matmul":
                data.matmul.append(
                    workers[name].call("matmul", shapes=shapes, seconds=args.matmul_seconds)["rates"]
                )
                continue
            result = workers[name].call("train", steps=args.steps)
            data.train.setdefault(name, []).append(result["times"])
            data.faults.setdefault(name, []).append(result["faults_per_step"])
    log(f"sampling: {SAMPLES} samples, {args.sample_rounds} timed draws each")
    for name in impls:
        workers[name].call("sample", n=SAMPLES, repeats=1)  # warm-up
    for round_index in range(args.sample_rounds):
        for name in interleaved(impls, round_index):
            data.sample.setdefault(name, []).extend(
                workers[name].call("sample", n=SAMPLES, repeats=1)["times"]
            )
    for name in impls:
        data.memory[name] = workers[name].call("memory")


def train_interleaved(workers: dict[str, WorkerProcess], names: list[str], seconds: float) -> dict[str, dict]:
    """Trains each named worker for ``seconds`` of its own training time, in alternating chunks.

    After each chunk the held-out bits/dim is evaluated (not counted as training time): ``curve``
    holds (training seconds, steps, bits/dim) per chunk, so one unlucky last step cannot decide.
    """
    chunk = max(5.0, min(30.0, seconds / 12))
    spent = {name: 0.0 for name in names}
    steps = {name: 0 for name in names}
    curves: dict[str, list[list[float]]] = {name: [] for name in names}
    round_index = 0
    while any(spent[name] < seconds - 1e-6 for name in names):
        for name in interleaved(names, round_index):
            if spent[name] < seconds - 1e-6:
                result = workers[name].call("train_for", seconds=min(chunk, seconds - spent[name]))
                spent[name] += result["seconds"]
                steps[name] = result["total_steps"]
                bits = workers[name].call("evaluate")["bits_per_dim"]
                curves[name].append([spent[name], steps[name], bits])
        round_index += 1
    return {
        name: {"train_seconds": spent[name], "steps": steps[name], "curve": curves[name]} for name in names
    }


def measure_quality(args: argparse.Namespace, workers: dict[str, WorkerProcess], data: Measurements) -> None:
    if args.quality_seconds <= 0:
        data.skipped["quality"] = "--quality-seconds 0"
        return
    if args.data_dir is None:
        data.skipped["quality"] = "no MNIST t10k files found (give --data-dir or set FLOWLAB_DATA_DIR)"
        return
    names = [name for name in QUALITY_IMPLS if name in workers]
    if not names:
        data.skipped["quality"] = "neither flowlab nor normflows is running"
        return
    log(f"time to quality: {args.quality_seconds:g} s of training each for {', '.join(names)}")
    for name in names:
        workers[name].call("reset", seed=args.seed)
    for name, result in train_interleaved(workers, names, args.quality_seconds).items():
        data.quality[name] = {**result, **workers[name].call("evaluate")}
    if args.quick:
        return  # the bf16 comparison below needs the full budget to say anything
    if "flowlab" in data.quality and "flowlab-bf16" in workers:
        bf16 = workers["flowlab-bf16"]
        target = data.quality["flowlab"]["steps"]
        log(f"bf16: {target} steps (as many as fp32 did), then up to the same budget")
        bf16.call("reset", seed=args.seed)  # same initial weights and batches as the fp32 run
        spent = 0.0
        for done in range(0, target, 50):
            spent += bf16.call("train_steps", steps=min(50, target - done))["seconds"]
        same_steps = bf16.call("evaluate")
        remaining = args.quality_seconds - spent
        extra = (
            bf16.call("train_for", seconds=remaining)
            if remaining > 0
            else {"total_steps": target, "seconds": 0}
        )
        same_budget = bf16.call("evaluate")
        data.quality["flowlab-bf16"] = {
            "steps": extra["total_steps"],
            "train_seconds": spent + extra["seconds"],
            "bits_per_dim": same_budget["bits_per_dim"],
            "same_steps": {
                "steps": target,
                "train_seconds": spent,
                "bits_per_dim": same_steps["bits_per_dim"],
            },
        }


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from flows.speed import bf16_status, cpu_flags

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    flags = cpu_flags()
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "simd": " ".join(sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}))
        or "unknown",
        "bf16": bf16_status("cpu")[1],
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none available in this run",
    }
    if args.device != "cpu":
        info["bf16"] = bf16_status(args.device)[1]
    return info


def run(args: argparse.Namespace) -> tuple[Measurements, dict[str, Any]]:
    data = Measurements(impls=list(args.impl_list))
    context: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "machine": machine_info(args),
        "load_before": os.getloadavg(),
        "settings": {
            "rounds": args.rounds,
            "steps": args.steps,
            "warmup": args.warmup,
            "sample_rounds": args.sample_rounds,
            "threads": args.threads,
            "batch": args.batch,
            "hidden": args.hidden,
            "quick": args.quick,
            "quality_seconds": args.quality_seconds,
            "data": str(args.data_dir) if args.data_dir else None,
            "train_gflop_per_image": training_flops_per_image(_hidden(args)) / 1e9,
            "sample_gflop_per_image": matmul_flops_per_image(_hidden(args)) / 1e9,
        },
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="flowlab-bench-") as log_dir:
        log(f"starting {len(args.impl_list)} workers + matmul (logs in {log_dir})")
        workers = start_workers(args, Path(log_dir), data)
        try:
            measure_speed(args, workers, data)
            measure_quality(args, workers, data)
        finally:
            for worker in workers.values():
                worker.close()
    context["seconds"] = time.perf_counter() - start
    context["load_after"] = os.getloadavg()
    return data, context


def _hidden(args: argparse.Namespace) -> list[int]:
    return [int(h) for h in args.hidden.split(",")]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data, context = run(args)
    except WorkerError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    summary = report.summarise(data, context, args.batch)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        raw = {"context": context, "data": data.__dict__, "summary": summary}
        atomic_write_bytes(args.json, json.dumps(raw, indent=1).encode())
    report.publish(report.markdown(data, context, summary), args.results, append=not args.no_results)
    if not args.no_results:
        log(f"appended to {args.results}")
    return 0
