"""One benchmark worker: a process holding one implementation, driven by JSON lines on stdin.

Each implementation runs in its own process so that its peak memory (ru_maxrss) is its own and
process-wide settings (threads, malloc) do not leak between implementations. The coordinator
(bench/run.py) sends commands one at a time and reads one JSON reply per command from stdout;
anything the libraries print goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor

from . import workloads

HELD_OUT = 1000  # real MNIST test digits kept for bits/dim; the other 9,000 are for training
MIX_KEY = "workload mix float32"  # see Worker.matmul
LOGIT_ALPHA = 0.05  # data preprocessing shared by every implementation: z = logit(a + (1 - 2a) x)


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Digits:
    """Real MNIST digits, split 9,000 train / 1,000 held out, turned into logit-space batches."""

    def __init__(self, root: Path, device: torch.device, seed: int) -> None:
        from flows import Logit
        from flows.data import load_mnist

        images, _ = load_mnist(root, "test")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(1234))
        images = images[order].reshape(len(images), -1)
        self.held_out, self.train = images[:HELD_OUT].to(device), images[HELD_OUT:].to(device)
        self.logit = Logit(LOGIT_ALPHA)
        self.device = device
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.generator = torch.Generator(self.device).manual_seed(seed)

    def to_logit(self, images: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """uint8 ``[B, 784]`` -> (z ``[B, 784]`` in logit space, log|dz/dx| ``[B]``), x dequantized."""
        from flows.data import dequantize

        with torch.no_grad():
            return self.logit.inverse(dequantize(images, generator))

    def batch(self, size: int) -> Tensor:
        from flows.data import random_batch

        return self.to_logit(random_batch(self.train, size, self.generator), self.generator)[0]


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.hidden = [int(h) for h in args.hidden.split(",")]
        self.digits: Digits | None = None
        if args.data:
            try:
                self.digits = Digits(Path(args.data), self.device, args.seed)
            except (OSError, ValueError) as error:
                self.data_error = f"{type(error).__name__}: {error}"
        self.workload: workloads.Workload | None = None
        if args.impl != "matmul":
            self.build(args.seed)

    def build(self, seed: int) -> None:
        self.workload = None
        gc.collect()
        torch.manual_seed(seed)
        self.workload = workloads.IMPLEMENTATIONS[self.args.impl].build(self.device, self.hidden)
        if self.digits is not None:
            self.digits.reseed(seed)
        self.steps = 0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def batch(self) -> Tensor:
        if self.digits is not None:
            return self.digits.batch(self.args.batch)
        return torch.randn(self.args.batch, workloads.FEATURES, device=self.device)

    # --- commands ----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        from importlib import metadata

        library = workloads.IMPLEMENTATIONS[self.args.impl].library if self.args.impl != "matmul" else "torch"
        version = "(this repository)" if library == "flowlab" else metadata.version(library)
        out: dict[str, Any] = {"library": library, "version": version, "torch": torch.__version__}
        out["threads"] = torch.get_num_threads()
        if self.workload is not None:
            out["parameters"] = self.workload.parameter_count()
            out["setup"] = self.workload.setup
            out["precision"] = self.workload.precision
        out["data"] = (
            "real MNIST digits" if self.digits is not None else getattr(self, "data_error", "random")
        )
        return out

    def train(self, steps: int) -> dict[str, Any]:
        """Times ``steps`` training steps one by one (the batch is made before the clock starts)."""
        times, faults = [], 0
        for _ in range(steps):
            x = self.batch()
            self.sync()
            faults_before, start = minor_faults(), time.perf_counter()
            loss = self.workload.train_step(x)
            self.sync()
            times.append(time.perf_counter() - start)
            faults += minor_faults() - faults_before
            self.steps += 1
        return {"times": times, "faults_per_step": faults / max(steps, 1), "loss": float(loss)}

    def sample(self, n: int, repeats: int) -> dict[str, Any]:
        times = []
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            with torch.no_grad():
                x = self.workload.sample(n)
            self.sync()
            times.append(time.perf_counter() - start)
            if tuple(x.shape) != (n, workloads.FEATURES):
                raise RuntimeError(f"{self.args.impl} sampled shape {tuple(x.shape)}, expected {(n, 784)}")
        return {"times": times}

    def _time_mm(self, a: Tensor, b: Tensor, seconds: float) -> float:
        """Median seconds of ``torch.mm(a, b, out=c)`` over repeats filling about ``seconds``."""
        c = torch.empty(a.shape[0], b.shape[1], device=self.device, dtype=a.dtype)
        torch.mm(a, b, out=c)
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 200):
            self.sync()
            start = time.perf_counter()
            torch.mm(a, b, out=c)
            self.sync()
            times.append(time.perf_counter() - start)
        times.sort()
        return times[len(times) // 2]

    def matmul(self, shapes: list[list[Any]], seconds: float) -> dict[str, Any]:
        """GFLOP/s of ``torch.mm`` per shape ``[m, k, n, dtype]`` (median of repeats), and of the mix.

        ``MIX_KEY``: the workload's own nine products per net in float32 (each layer's forward
        x W, input gradient g W^T and weight gradient x^T g, in Flow Lab's ``[in, out]`` weight layout),
        total FLOPs over total median time: the rate a step could reach if it were only matmuls.
        """
        rates = {}
        for m, k, n, dtype_name in shapes:
            dtype = getattr(torch, dtype_name)
            a = torch.randn(m, k, device=self.device).to(dtype)
            b = torch.randn(k, n, device=self.device).to(dtype)
            rates[f"{m}x{k}x{n} {dtype_name}"] = 2 * m * k * n / self._time_mm(a, b, seconds) / 1e9
        flops, spent = 0, 0.0
        sizes = [workloads.HALF, *self.hidden, workloads.HALF]
        for n_in, n_out in itertools.pairwise(sizes):
            x = torch.randn(self.args.batch, n_in, device=self.device)
            weight = torch.randn(n_in, n_out, device=self.device)
            grad = torch.randn(self.args.batch, n_out, device=self.device)
            for a, b in ((x, weight), (grad, weight.t()), (x.t(), grad)):
                flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
                spent += self._time_mm(a, b, seconds / 3)
        rates[MIX_KEY] = flops / spent / 1e9
        return {"rates": rates}

    def memory(self) -> dict[str, Any]:
        out: dict[str, Any] = {"peak_rss_mib": peak_rss_mib()}
        if self.device.type == "cuda":
            out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        return out

    def _timed_step(self) -> float:
        """One training step on a fresh batch; returns its time in seconds (batch drawing excluded)."""
        x = self.batch()
        self.sync()
        start = time.perf_counter()
        self.workload.train_step(x)
        self.sync()
        self.steps += 1
        return time.perf_counter() - start

    def train_for(self, seconds: float) -> dict[str, Any]:
        """Trains on MNIST until ``seconds`` of training time have passed (at least one step)."""
        spent, steps = 0.0, 0
        while steps == 0 or spent < seconds:
            spent += self._timed_step()
            steps += 1
        return {"steps": steps, "seconds": spent, "total_steps": self.steps}

    def train_steps(self, steps: int) -> dict[str, Any]:
        spent = sum(self._timed_step() for _ in range(steps))
        return {"steps": steps, "seconds": spent, "total_steps": self.steps}

    def evaluate(self) -> dict[str, Any]:
        """Bits/dim of the held-out digits in float32 (fixed dequantization noise), no grad."""
        from flows.data import bits_per_dim

        if self.digits is None:
            raise RuntimeError("no MNIST digits: give --data")
        generator = torch.Generator(self.device).manual_seed(99)
        total, count = 0.0, 0
        self.workload.model.eval()
        with torch.no_grad():
            for chunk in self.digits.held_out.split(250):
                z, log_abs_det = self.digits.to_logit(chunk, generator)
                log_p = self.workload.log_prob(z).double() + log_abs_det.double()
                total += float(bits_per_dim(log_p, workloads.FEATURES).sum())
                count += len(chunk)
        self.workload.model.train()
        return {"bits_per_dim": total / count, "steps": self.steps}

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command["cmd"]
        if name == "info":
            return self.info()
        if name == "train":
            return self.train(int(command["steps"]))
        if name == "sample":
            return self.sample(int(command["n"]), int(command.get("repeats", 1)))
        if name == "matmul":
            return self.matmul(command["shapes"], float(command.get("seconds", 1.0)))
        if name == "memory":
            return self.memory()
        if name == "reset":
            self.build(int(command["seed"]))
            return {"ok": True}
        if name == "train_for":
            return self.train_for(float(command["seconds"]))
        if name == "train_steps":
            return self.train_steps(int(command["steps"]))
        if name == "evaluate":
            return self.evaluate()
        raise ValueError(f"unknown command {name!r}")


def reply(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", required=True, choices=[*workloads.IMPLEMENTATIONS, "matmul"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=workloads.BATCH_SIZE)
    parser.add_argument("--hidden", default=",".join(map(str, workloads.HIDDEN)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="")
    args = parser.parse_args(argv)

    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # libraries that print must not break the protocol
    torch.set_num_threads(args.threads)
    try:
        worker = Worker(args)
    except Exception as error:  # an uninstalled peer, a bad option: reported, the run goes on
        reply(channel, {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})
        return 1
    reply(channel, {"ok": True, "info": worker.info()})
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        try:
            reply(channel, {"ok": True, **worker.handle(command)})
        except Exception as error:
            reply(channel, {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
