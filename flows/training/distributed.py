"""Devices and torchrun: resolve ``--device``, start DistributedDataParallel, reduce across processes.

Under ``torchrun --nproc_per_node=N`` every process gets RANK, WORLD_SIZE and LOCAL_RANK in its
environment; :func:`init_distributed` then joins the process group (gloo on CPU, nccl on CUDA). Without
torchrun everything here is a single-process no-op, so the same code serves both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True for rank 0, the only process that writes the run folder and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1


def environment_context() -> DistributedContext:
    """The ranks torchrun put in the environment (a single process when they are absent)."""
    try:
        return DistributedContext(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as error:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({error})") from error


def current_context() -> DistributedContext:
    """The context of the initialised process group, or a single process."""
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    return DistributedContext()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> cuda if available, else cpu; ``"cuda"`` -> this process's GPU; ValueError if absent."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} asked for, but CUDA is not available here; use --device cpu or auto"
        )
    device = torch.device(name if ":" in name else f"cuda:{local_rank}")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)"
        )
    return device


def init_distributed(device: torch.device, timeout_s: float = 300) -> DistributedContext:
    """Joins the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    context = environment_context()
    if not context.enabled or dist.is_initialized():
        return current_context() if context.enabled else context
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return current_context()


def shutdown_distributed() -> None:
    """Leaves the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(value: Tensor) -> Tensor:
    """The sum of ``value`` over all processes (``value`` itself when training alone)."""
    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def all_reduce_mean(value: Tensor) -> Tensor:
    """The mean of ``value`` over all processes."""
    if dist.is_available() and dist.is_initialized():
        return all_reduce_sum(value) / dist.get_world_size()
    return value


def any_process(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true in at least one process, so that all processes decide alike."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier() -> None:
    """Waits for every process (no-op alone)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
