"""bench/: the reference workload's size and FLOP formula, the command line and the report (no timings)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import report, workloads
from bench.run import Measurements, interleaved, parse_args
from tests.conftest import REPO

#: Parameters of the reference workload: 16 nets 392 -> 1024 -> 1024 -> 392 (weights and biases).
REFERENCE_NET_PARAMETERS = (392 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 392 + 392)
REFERENCE_PARAMETERS = 16 * REFERENCE_NET_PARAMETERS
#: The learned per-coordinate factor c of the tanh bound, one per coupling and coordinate.
TANH_FACTORS = 8 * 392


@pytest.mark.parametrize("name", ["flowlab", "plain"])
def test_in_process_workloads_have_the_reference_size(name: str) -> None:
    workload = workloads.IMPLEMENTATIONS[name].build(torch.device("cpu"), workloads.HIDDEN)
    assert workload.parameter_count() == REFERENCE_PARAMETERS + TANH_FACTORS == 29_664_448


@pytest.mark.parametrize("name", ["normflows", "nflows", "zuko"])
def test_peer_workloads_have_the_reference_size(name: str) -> None:
    pytest.importorskip(name, reason=f"{name} is a bench-only peer (pip install -r requirements-bench.txt)")
    workload = workloads.IMPLEMENTATIONS[name].build(torch.device("cpu"), workloads.HIDDEN)
    assert workload.parameter_count() == REFERENCE_PARAMETERS  # no learned tanh factor in the peers
    x = torch.randn(4, workloads.FEATURES)
    assert workload.log_prob(x).shape == (4,)
    assert workload.sample(3).shape == (3, workloads.FEATURES)


def test_reference_flops_match_the_issue() -> None:
    biases = 1024 + 1024 + 392
    assert workloads.matmul_flops_per_image() == 2 * 8 * 2 * (REFERENCE_NET_PARAMETERS - biases)
    assert workloads.training_flops_per_image() / 1e9 == pytest.approx(0.178, abs=0.001)  # "about 0.18"


@pytest.mark.parametrize("name", ["flowlab", "plain"])
def test_flop_formula_matches_torch_flop_counter(name: str) -> None:
    """Counted matmul FLOPs: the forward equals the formula, forward + backward is just under 3x it."""
    hidden = [48, 40]
    workload = workloads.IMPLEMENTATIONS[name].build(torch.device("cpu"), hidden)
    batch = 5
    x = torch.randn(batch, workloads.FEATURES)
    with FlopCounterMode(display=False) as forward:
        workload.log_prob(x)
    assert forward.get_total_flops() == batch * workloads.matmul_flops_per_image(hidden)
    with FlopCounterMode(display=False) as training:
        workload.training_loss(x).backward()
    ratio = training.get_total_flops() / forward.get_total_flops()
    # Backward is twice the forward, less the input gradient of the first layer fed by the data itself.
    assert 2.9 < ratio <= 3.0
    assert workloads.training_flops_per_image(hidden) == 3 * workloads.matmul_flops_per_image(hidden)


def test_bf16_workload_loss_is_float32() -> None:
    workload = workloads.IMPLEMENTATIONS["flowlab-bf16"].build(torch.device("cpu"), [32])
    loss = workload.training_loss(torch.randn(4, workloads.FEATURES))
    assert workload.precision == "bf16" and loss.dtype == torch.float32


def test_help_runs_without_the_peer_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "normflows" in result.stdout


def test_parse_args_defaults_and_errors() -> None:
    quick = parse_args(["--quick", "--impls", "flowlab,plain", "--no-results"])
    assert (quick.rounds, quick.steps, quick.impl_list) == (2, 3, ["flowlab", "plain"])
    full = parse_args(["--ablation"])
    assert full.rounds == 6 and "flowlab-untuned" in full.impl_list and "zuko" in full.impl_list
    with pytest.raises(SystemExit):
        parse_args(["--impls", "flowlab,tensorflow"])


def test_interleaving_reverses_every_other_round() -> None:
    assert interleaved(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert interleaved(["a", "b", "c"], 1) == ["c", "b", "a"]


def _fake_run() -> tuple[Measurements, dict]:
    data = Measurements(impls=["flowlab", "zuko"])
    data.train = {
        "flowlab": [[0.2, 0.2, 0.2], [0.2, 0.2, 0.2]],
        "zuko": [[0.25, 0.25, 0.3], [0.25, 0.2, 0.25]],
    }
    data.faults = {"flowlab": [3.0, 1.0], "zuko": [900.0, 1100.0]}
    rates = {report.MM_WORKLOAD: 150.0, report.MM_CUBE: 180.0, report.MM_BF16: 600.0, report.MM_MIX: 128.0}
    slowed = {shape: rate * 0.5 for shape, rate in rates.items()}  # another process took the CPU
    data.matmul = [rates, slowed]
    data.sample = {"flowlab": [0.5], "zuko": [0.4]}
    data.memory = {"flowlab": {"peak_rss_mib": 800.0}, "zuko": {"peak_rss_mib": 820.0}}
    data.quality = {
        "flowlab": {
            "steps": 10,
            "train_seconds": 2.0,
            "bits_per_dim": 5.0,
            "curve": [[1, 5, 6.0], [2, 10, 5.0]],
        }
    }
    data.info = {
        "flowlab": {"library": "flowlab", "version": "(this repository)", "setup": ["Adam(fused=True)"]},
        "zuko": {"library": "zuko", "version": "1.6.0", "setup": ["default Adam"]},
    }
    context = {
        "started": "2026-01-01 00:00 UTC",
        "command": "python -m bench --quick",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "memory_gib": 8.0,
            "simd": "avx2",
            "bf16": "no bf16",
            "gpu": "none",
            "device": "cpu",
            "os": "Linux",
            "python": "3.11",
            "torch": "2.13.0",
        },
        "load_before": (0.1, 0.1, 0.1),
        "load_after": (0.2, 0.2, 0.2),
        "seconds": 60.0,
        "settings": {
            "batch": 128,
            "threads": 2,
            "hidden": "1024,1024",
            "rounds": 2,
            "steps": 3,
            "warmup": 2,
            "sample_rounds": 1,
            "quality_seconds": 2.0,
            "quick": True,
            "train_gflop_per_image": 0.18,
            "sample_gflop_per_image": 0.06,
        },
    }
    return data, context


def test_summary_of_a_fake_run() -> None:
    data, context = _fake_run()
    summary = report.summarise(data, context, batch=128)
    flowlab, zuko = summary["rows"]["flowlab"], summary["rows"]["zuko"]
    assert flowlab["train_img_s"] == pytest.approx(640.0)
    assert zuko["train_img_s"] == pytest.approx(512.0)
    assert flowlab["train_share"] == pytest.approx(
        640 * 0.18 / 150
    )  # the best matmul round, not the slowed one
    assert flowlab["sample_img_s"] == pytest.approx(2048.0)
    assert summary["ratios"]["flowlab"]["zuko"]["median"] == pytest.approx(1.25)
    assert summary["fastest_peer"] == "zuko"
    targets = {t["what"]: t for t in summary["targets"]}
    assert targets["fp32 training speed vs fastest peer (zuko)"]["met"] is True
    assert targets["peak RSS vs leanest peer (MiB)"]["met"] is True
    assert targets["fp32 training, share of 128x1024x1024 matmul rate"]["measured"] == "77%"


def test_markdown_of_a_fake_run_is_a_parsable_table(tmp_path) -> None:
    data, context = _fake_run()
    text = report.markdown(data, context, report.summarise(data, context, batch=128))
    rows = [line for line in text.splitlines() if line.startswith("| flowlab:")]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells[2:6] == [
        "640",
        "115",
        "77%",
        "90%",
    ]  # img/s, GFLOP/s, shares of the 128x1024x1024 and mix rates
    assert "zuko 1.25x (1.25-1.25)" in text
    assert "Versions: python 3.11, torch 2.13.0, zuko 1.6.0." in text
    assert "| flowlab | 10 | 2 | 5.000 | 5.000 | 6.00, 5.00 |" in text
    results = tmp_path / "RESULTS.md"
    report.append_results(results, text)
    report.append_results(results, text)
    written = results.read_text()
    assert written.startswith("# Benchmark results") and written.count("## 2026-01-01") == 2


def test_quality_bench_trains_scores_and_writes_a_grid(mnist_dir, judge_cache, tmp_path, monkeypatch) -> None:
    from bench import quality

    _, cache, _ = judge_cache
    monkeypatch.setenv("FLOWLAB_JUDGE_DIR", str(cache))
    results = tmp_path / "QUALITY.md"
    # normflows is a benchmark requirement (requirements-bench.txt), not a test one: without it the
    # peer's row is left out and the rest is still checked.
    with_peer = importlib.util.find_spec("normflows") is not None
    if not with_peer:
        print("normflows is not installed (requirements-bench.txt): checking Flow Lab's rows only")
    families = "realnvp,normflows-glow" if with_peer else "realnvp"
    argv = ["--budgets", "0.02", "--datasets", "mnist", "--families", families]
    argv += ["--data-dir", str(mnist_dir), "--samples", "64", "--curve-points", "2", "--threads", "1"]
    argv += ["--grids", str(tmp_path / "grids"), "--results", str(results)]
    assert quality.main(argv) == 0
    text = results.read_text()
    assert text.startswith("# Sample quality at equal wall time")
    rows = [line for line in text.splitlines() if line.startswith("| MNIST")]
    names = [row.split(" | ")[1] for row in rows]
    assert names[0] == "Flow Lab MLP RealNVP" and len(names) == (2 if with_peer else 1)
    if with_peer:  # its width matched to Flow Lab Glow's CPU preset
        assert names[1].startswith("normflows Glow (hidden ")
    # the registry's preset, as main.py starts it
    assert rows[0].split(" | ")[2] == "lr 0.001, batch 64, fp32, EMA 0.999, shifts up to 2 px"
    assert all(float(row.split(" | ")[7]) < 10.85 for row in rows)  # they learned (untrained: 10.85)
    assert len(list((tmp_path / "grids").glob("*.png"))) == len(names)


def test_quality_bench_families_are_the_registry_presets() -> None:
    from bench import quality
    from flows.registry import get_family

    glow = quality.flow_lab_family("glow")
    preset = get_family("glow").preset("cpu")
    assert glow.settings["amp"] == preset.get("amp", False)
    built = glow.build()
    assert quality.parameter_count(built) == quality.parameter_count(
        quality.flow_lab_family("glow", {"hidden_channels": preset["hidden_channels"]}).build()
    )
    smaller = quality.flow_lab_family("glow", {"hidden_channels": 16}).build()
    assert quality.parameter_count(smaller) < quality.parameter_count(built)
    with pytest.raises(ValueError, match="unknown families"):
        quality.families(["no-such-family"])


def test_preset_search_writes_one_row_per_candidate(mnist_dir, judge_cache, tmp_path, monkeypatch) -> None:
    from bench import presets

    _, cache, _ = judge_cache
    monkeypatch.setenv("FLOWLAB_JUDGE_DIR", str(cache))
    monkeypatch.setitem(presets.CANDIDATES, "nice", [{}, {"hidden": [32]}])
    results = tmp_path / "PRESETS.md"
    argv = ["--families", "nice", "--minutes", "0.01", "--data-dir", str(mnist_dir), "--threads", "1"]
    assert presets.main([*argv, "--results", str(results)]) == 0
    rows = [line for line in results.read_text().splitlines() if line.startswith("| Flow Lab NICE")]
    assert [row.split(" | ")[1] for row in rows] == ["the preset", "hidden=[32]"]
    assert int(rows[1].split(" | ")[3].replace(",", "")) < int(rows[0].split(" | ")[3].replace(",", ""))


def test_quality_bench_lr_follows_the_time_budget() -> None:
    from bench.quality import MIN_LR_FRACTION, WARMUP_STEPS, learning_rate

    assert learning_rate(1.0, 0, 0.0) == 1 / WARMUP_STEPS
    assert learning_rate(1.0, WARMUP_STEPS, 0.0) == 1.0
    assert abs(learning_rate(1.0, 10**6, 0.5) - (1 + MIN_LR_FRACTION) / 2) < 1e-12
    assert abs(learning_rate(1.0, 10**6, 1.0) - MIN_LR_FRACTION) < 1e-12
