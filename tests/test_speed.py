"""flows.speed: fused Adam, malloc tuning and the bf16 autocast path keep the maths and do what they say."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from flows import Gaussian, RealNVP, speed
from flows.speed import MALLOC_ENV, bf16_autocast, bf16_log_probability, bf16_status, make_adam, tune_malloc
from flows.training import TrainConfig, Trainer
from flows.training import trainer as trainer_module
from flows.training.guards import clip_gradients


def _small_realnvp() -> RealNVP:
    model = RealNVP(Gaussian([16]), hidden=[32, 32], blocks=2)
    with torch.no_grad():  # move the zero-initialised last layers off zero so the couplings act
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def test_make_adam_is_fused_and_takes_the_same_step_as_default_adam() -> None:
    torch.manual_seed(1)
    fused_model = torch.nn.Linear(8, 4)
    plain_model = torch.nn.Linear(8, 4)
    plain_model.load_state_dict(fused_model.state_dict())
    fused, plain = (
        make_adam(fused_model.parameters(), lr=1e-2),
        torch.optim.Adam(plain_model.parameters(), lr=1e-2),
    )
    assert fused.defaults["fused"] is True
    x = torch.randn(16, 8)
    for _ in range(3):
        for model, optimizer in ((fused_model, fused), (plain_model, plain)):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_make_adam_rejects_an_empty_parameter_list() -> None:
    with pytest.raises(ValueError, match="no trainable parameters"):
        make_adam([])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_tune_malloc_keeps_large_blocks_in_the_heap() -> None:
    """After tune_malloc an 8 MiB malloc is served from the heap, not by a fresh mmap (mallinfo2.hblks)."""
    code = textwrap.dedent(
        """
        import ctypes, sys
        from flows.speed import tune_malloc

        class MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in
                        ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                         "uordblks", "fordblks", "keepcost")]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]

        def mmapped_blocks_for(size):
            before = libc.mallinfo2().hblks
            pointer = libc.malloc(size)
            during = libc.mallinfo2().hblks
            libc.free(pointer)
            return during - before

        default = mmapped_blocks_for(8 << 20)
        applied = tune_malloc()
        tuned = mmapped_blocks_for(8 << 20)
        print(default, applied, tuned)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    default, applied, tuned = result.stdout.split()
    assert applied == "True"
    assert (default, tuned) == ("1", "0")
    assert int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]) == 32 * 2**20
    assert tune_malloc() is True  # idempotent in this process too


def test_bf16_log_probability_is_float32_and_close_to_float32() -> None:
    model = _small_realnvp()
    x = torch.randn(64, 16)
    with torch.no_grad():
        exact = model.logProbability(x)
        approximate = bf16_log_probability(model, x)
        with bf16_autocast("cpu"):
            z, log_abs_det = model.inverse(x)
            shift = model.layers[0].shift(x[:, :8])
    assert approximate.dtype == torch.float32
    assert log_abs_det.dtype == torch.float32  # the log-dets are accumulated in float32 ...
    assert z.dtype == torch.float32  # ... and so is the data path
    assert shift.dtype == torch.bfloat16  # while the conditioner nets really ran in bfloat16
    # bf16 keeps 8 bits of mantissa: a few parts in a thousand of |log p|, nowhere near fp32 equality.
    torch.testing.assert_close(approximate, exact, rtol=2e-2, atol=0.05)
    assert not torch.equal(approximate, exact)


def test_bf16_training_step_gives_float32_gradients_and_a_finite_loss() -> None:
    model = _small_realnvp()
    with bf16_autocast("cpu"):
        loss = -model.logProbability(torch.randn(32, 16)).mean()
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


def test_bf16_status_names_the_hardware_and_rejects_other_devices() -> None:
    native, sentence = bf16_status("cpu")
    assert isinstance(native, bool)
    assert ("native bfloat16" in sentence) if native else ("float32" in sentence)
    assert bf16_status("meta") == (False, "bfloat16 autocast is offered for cpu and cuda, not meta")
    with pytest.raises(ValueError, match="cpu' or 'cuda"), bf16_autocast("meta"):
        pass


def _toy_trainer_config(**changes: object) -> TrainConfig:
    fields = {"dataset": "moons", "toy_points": 256, "hidden": [16], "blocks": 1, "batch_size": 32}
    fields.update({"steps": 3, "eval_every": 0, "checkpoint_every": 0, "device": "cpu", **changes})
    return TrainConfig(**fields)


def test_trainer_uses_fused_adamw_and_leaves_malloc_to_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(speed, "tune_malloc", lambda: calls.append(1) or True)
    trainer = Trainer(_toy_trainer_config())
    assert calls == []  # a process-wide setting: the dashboard's server must not get it from a Trainer
    assert trainer.optimizer.defaults["fused"] is True
    assert trainer.amp_status is None


def test_main_tunes_malloc_before_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from flows import cli
    from flows.cli import command

    calls = []
    monkeypatch.setattr(command, "tune_malloc", lambda: calls.append(1) or True)
    argv = ["--dataset", "moons", "--toy-points", "256", "--hidden", "16", "--blocks", "1", "--steps", "2"]
    argv += ["--eval-every", "0", "--runs-dir", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 0
    assert calls == [1]


def test_trainer_amp_says_when_the_cpu_lacks_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_module, "bf16_status", lambda device: (False, "no native bfloat16 here"))
    with pytest.warns(UserWarning, match=r"amp \(bfloat16 autocast\): no native bfloat16 here"):
        trainer = Trainer(_toy_trainer_config(amp=True))
    assert trainer.amp_status == "no native bfloat16 here"
    history = trainer.run()  # bf16 autocast still trains (emulated), the loss in float32
    assert all(math.isfinite(event.loss) for event in history if event.kind == "step")


def test_trainer_amp_on_native_hardware_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_module, "bf16_status", lambda device: (True, "native"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Trainer(_toy_trainer_config(amp=True)).amp_status == "native"


@pytest.mark.parametrize("max_norm", [1e-3, 1e3, 0.0])
def test_trainer_clipping_matches_clip_grad_norm(max_norm: float) -> None:
    """Skipping the x1.0 pass under the limit changes nothing: same gradients, same norm, bit for bit."""
    trainer = Trainer(_toy_trainer_config())
    reference = copy.deepcopy(trainer.model)
    x = torch.randn(32, 2)
    for model in (trainer.model, reference):
        (-model.logProbability(x).mean()).backward()
    norm = clip_gradients(trainer.model, max_norm)  # what Trainer.train_step calls
    expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm if max_norm > 0 else math.inf)
    assert norm == float(expected)
    for ours, theirs in zip(trainer.model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours.grad, theirs.grad)
