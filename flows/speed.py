"""Training-speed settings that leave a flow's maths unchanged.

Three measured levers (see bench/NOTES.md for the numbers):

* :func:`make_adam`: Adam with ``fused=True``, one kernel over all parameters instead of torch's
  per-tensor loop on CPU (and a lower peak memory: no temporary lists of parameter-sized tensors).
* :func:`tune_malloc`: glibc's malloc keeps freed buffers instead of returning them to the system, so
  a step that frees and reallocates large buffers (torch's default Adam: thousands of page faults per
  step) stops paying page faults; with fused Adam glibc's own adaptive thresholds mostly do this
  already. Same effect as starting the process with :data:`MALLOC_ENV` in its environment; this
  function applies it at run time with ``mallopt``.
* :func:`bf16_autocast`: the conditioner networks' matrix products run in bfloat16 while every
  log-det, the prior's log density and the loss stay in float32 (see :func:`bf16_status` for whether
  the hardware runs bfloat16 natively).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

#: glibc malloc settings, in bytes: serve every allocation below 32 MiB (the largest threshold glibc
#: accepts) from the heap instead of a fresh mmap, never trim less than 1 GiB of free heap top, and grow
#: the heap 64 MiB at a time. Put them in the environment *before* Python starts, e.g.
#: ``env MALLOC_MMAP_THRESHOLD_=33554432 ... python main.py``, or call :func:`tune_malloc` at run time.
MALLOC_ENV: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(2**30),
    "MALLOC_TOP_PAD_": str(64 * 2**20),
}

# mallopt(3) parameter numbers, from glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MALLOPT_OF_ENV = {
    "MALLOC_TRIM_THRESHOLD_": _M_TRIM_THRESHOLD,
    "MALLOC_TOP_PAD_": _M_TOP_PAD,
    "MALLOC_MMAP_THRESHOLD_": _M_MMAP_THRESHOLD,
}

#: CPU flags that mean bfloat16 matrix products run in hardware.
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def make_adam(parameters: Iterable[nn.Parameter], lr: float = 1e-3, **kwargs: object) -> torch.optim.Adam:
    """``torch.optim.Adam`` with ``fused=True`` where torch supports it, else the default Adam.

    The update is the same Adam (same formula, same hyperparameters); only its implementation
    differs. Fused Adam needs all parameters floating point on one CPU or CUDA device.
    """
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        raise ValueError("make_adam got no trainable parameters; pass model.parameters()")
    devices = {p.device.type for p in parameters}
    fusable = (
        len(devices) == 1 and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in parameters)
    )
    if fusable and "fused" not in kwargs and "foreach" not in kwargs:
        return torch.optim.Adam(parameters, lr=lr, fused=True, **kwargs)
    return torch.optim.Adam(parameters, lr=lr, **kwargs)


def tune_malloc() -> bool:
    """Applies :data:`MALLOC_ENV` to this process's glibc malloc with ``mallopt``; False where not glibc.

    Call it once at the start of training. Buffers freed by one step are then reused by the next
    instead of being unmapped and faulted in again. Peak memory stays the same; memory freed after
    training is returned to the system only when the process ends.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(_MALLOPT_OF_ENV[key], int(value)) == 1 for key, value in MALLOC_ENV.items())


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_status(device: str | torch.device = "cpu") -> tuple[bool, str]:
    """Whether ``device`` runs bfloat16 matrix products natively, and a sentence saying so.

    On a CPU without avx512_bf16 or amx_bf16 autocast still works but bfloat16 is emulated and
    usually slower than float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return True, f"{torch.cuda.get_device_name(device)} supports bfloat16 natively"
        return False, "this CUDA device has no native bfloat16: use float32"
    if device.type != "cpu":
        return False, f"bfloat16 autocast is offered for cpu and cuda, not {device.type}"
    native = sorted(set(NATIVE_BF16_CPU_FLAGS) & cpu_flags())
    if native:
        return True, f"this CPU has native bfloat16 ({', '.join(native)})"
    return False, (
        "this CPU lacks avx512_bf16 and amx_bf16: bfloat16 is emulated and usually slower than "
        "float32, so train in float32 here"
    )


@contextlib.contextmanager
def bf16_autocast(device: str | torch.device = "cpu", enabled: bool = True) -> Iterator[None]:
    """Runs the matrix products inside it in bfloat16 (``torch.autocast``), on CPU or CUDA.

    Use it around the forward pass only: ``with bf16_autocast(device): log_p = model.logProbability(x)``,
    then ``loss = -log_p.mean()`` and ``loss.backward()`` outside. Flow Lab's couplings keep the data
    path, the log-scales' sums (the log-dets), the prior and hence ``log_p`` in float32: only the
    conditioner networks' layers see bfloat16.
    """
    device_type = torch.device(device).type
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"bf16 autocast runs on 'cpu' or 'cuda', got {device_type!r}")
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled):
        yield


def bf16_log_probability(model: nn.Module, x: Tensor) -> Tensor:
    """``model.logProbability(x)`` with the conditioners in bfloat16, returned in float32 ``[batch]``."""
    with bf16_autocast(x.device):
        log_p = model.logProbability(x)
    return log_p.float()
