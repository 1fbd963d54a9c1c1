"""Turns a benchmark run's raw measurements into ratios, a Markdown table and a RESULTS.md entry."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.training.runs import atomic_write_bytes

from .workloads import IMPLEMENTATIONS, LOG_SCALE_OF

if TYPE_CHECKING:
    from .run import Measurements

MM_WORKLOAD, MM_CUBE, MM_BF16 = "128x1024x1024 float32", "2048x2048x2048 float32", "128x1024x1024 bfloat16"
MM_MIX = "workload mix float32"  # bench.worker.MIX_KEY
SAMPLES = 1024

# The issue's targets (all ratios within one run).
TARGET_SPEEDUP = 1.25  # training images/s vs the fastest peer
TARGET_TRAIN_SHARE = 0.85  # of the 128x1024x1024 fp32 matmul rate
TARGET_SAMPLE_SHARE = 0.90
TARGET_BF16_SPEEDUP = 2.0  # bf16 training vs the fastest fp32 peer
TARGET_BF16_BITS = 0.02  # |bits/dim(bf16) - bits/dim(fp32)| after the same number of steps


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarise(data: Measurements, context: dict[str, Any], batch: int) -> dict[str, Any]:
    """Medians, shares of the matmul rate, per-round ratios and the targets, as plain numbers."""
    settings = context["settings"]
    train_gflop, sample_gflop = settings["train_gflop_per_image"], settings["sample_gflop_per_image"]
    matmul = {
        shape: [round_rates[shape] for round_rates in data.matmul]
        for shape in (data.matmul[0] if data.matmul else {})
    }
    # The machine's matmul rate is the best one observed in the run: another process on the CPU can
    # only slow a measurement down, and a slowed-down rate would inflate every share measured against it.
    mm = {shape: max(rates) for shape, rates in matmul.items()}
    rows: dict[str, dict[str, Any]] = {}
    for name, rounds in data.train.items():
        steps = [t for chunk in rounds for t in chunk]
        q1, med, q3 = _quartiles(steps)
        images_per_s = batch / med
        row = {
            "train_ms": med * 1e3,
            "train_spread": (q3 - q1) / med,
            "train_img_s": images_per_s,
            "train_gflops": images_per_s * train_gflop,
            "faults_per_step": statistics.median(data.faults[name]),
            "steps_timed": len(steps),
        }
        if mm:
            row["train_share"] = row["train_gflops"] / mm[MM_WORKLOAD]
            row["train_share_cube"] = row["train_gflops"] / mm[MM_CUBE]
            if MM_BF16 in mm:
                row["train_share_bf16"] = row["train_gflops"] / mm[MM_BF16]
            if MM_MIX in mm:
                row["train_share_mix"] = row["train_gflops"] / mm[MM_MIX]
        if name in data.sample:
            sample_s = statistics.median(data.sample[name])
            row["sample_img_s"] = SAMPLES / sample_s
            row["sample_gflops"] = SAMPLES / sample_s * sample_gflop
            if mm:
                row["sample_share"] = row["sample_gflops"] / mm[MM_WORKLOAD]
        if name in data.memory:
            row["peak_rss_mib"] = data.memory[name]["peak_rss_mib"]
            if "cuda_peak_mib" in data.memory[name]:
                row["cuda_peak_mib"] = data.memory[name]["cuda_peak_mib"]
        rows[name] = row

    def ratio(fast: str, slow: str) -> dict[str, float] | None:
        """How many times faster ``fast`` trains than ``slow``: per round, then median and range."""
        if fast not in data.train or slow not in data.train:
            return None
        per_round = [
            statistics.median(slow_chunk) / statistics.median(fast_chunk)
            for fast_chunk, slow_chunk in zip(data.train[fast], data.train[slow], strict=True)
        ]
        return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round)}

    ratios = {
        base: {other: ratio(base, other) for other in data.train if other != base}
        for base in ("flowlab", "flowlab-bf16")
        if base in data.train
    }
    peers = [name for name in data.train if IMPLEMENTATIONS[name].is_peer]
    fastest_peer = max(peers, key=lambda name: rows[name]["train_img_s"]) if peers else None
    targets = _targets(rows, ratios, peers, fastest_peer, data)
    return {
        "matmul": mm,
        "matmul_range": {shape: (min(rates), max(rates)) for shape, rates in matmul.items()},
        "rows": rows,
        "ratios": ratios,
        "fastest_peer": fastest_peer,
        "targets": targets,
    }


def _targets(
    rows: dict[str, dict[str, Any]],
    ratios: dict[str, dict[str, Any]],
    peers: list[str],
    fastest_peer: str | None,
    data: Measurements,
) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def add(
        what: str, measured: float | None, target: float, fmt: str, higher_is_better: bool = True
    ) -> None:
        if measured is None:
            targets.append(
                {"what": what, "measured": "not measured", "target": fmt.format(target), "met": None}
            )
            return
        met = measured >= target if higher_is_better else measured <= target
        targets.append(
            {"what": what, "measured": fmt.format(measured), "target": fmt.format(target), "met": met}
        )

    flowlab = rows.get("flowlab")
    if flowlab and fastest_peer:
        speedup = (ratios.get("flowlab", {}).get(fastest_peer) or {}).get("median")
        add(f"fp32 training speed vs fastest peer ({fastest_peer})", speedup, TARGET_SPEEDUP, "{:.2f}x")
    if flowlab:
        add(
            "fp32 training, share of 128x1024x1024 matmul rate",
            flowlab.get("train_share"),
            TARGET_TRAIN_SHARE,
            "{:.0%}",
        )
        add(
            "sampling, share of 128x1024x1024 matmul rate",
            flowlab.get("sample_share"),
            TARGET_SAMPLE_SHARE,
            "{:.0%}",
        )
        leanest = min((rows[p].get("peak_rss_mib", float("inf")) for p in peers), default=None)
        if leanest is not None and "peak_rss_mib" in flowlab:
            add(
                "peak RSS vs leanest peer (MiB)",
                flowlab["peak_rss_mib"],
                leanest,
                "{:.0f}",
                higher_is_better=False,
            )
    if "flowlab-bf16" in rows and fastest_peer:
        speedup = (ratios.get("flowlab-bf16", {}).get(fastest_peer) or {}).get("median")
        add(
            f"bf16 training speed vs fastest fp32 peer ({fastest_peer})",
            speedup,
            TARGET_BF16_SPEEDUP,
            "{:.2f}x",
        )
    quality = data.quality
    if "flowlab-bf16" in quality and "flowlab" in quality:
        gap = abs(quality["flowlab-bf16"]["same_steps"]["bits_per_dim"] - quality["flowlab"]["bits_per_dim"])
        add(
            "bf16 vs fp32 held-out bits/dim, same steps at constant lr (noisy; see bench.amp_quality)",
            gap,
            TARGET_BF16_BITS,
            "{:.3f}",
            higher_is_better=False,
        )
    return targets


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown(data: Measurements, context: dict[str, Any], summary: dict[str, Any]) -> str:
    """The run as a Markdown section: machine, versions, the table, ratios, targets, quality, noise."""
    machine, settings = context["machine"], context["settings"]
    rows, mm, ratios = summary["rows"], summary["matmul"], summary["ratios"]
    lines = [f"## {context['started']}: `{context['command']}`", ""]
    lines.append(
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"SIMD: {machine['simd']}; "
        f"{machine['bf16']}. GPU: {machine['gpu']}; device used: {machine['device']}. {machine['os']}."
    )
    versions = {"python": machine["python"], "torch": machine["torch"]}
    for name, info in data.info.items():
        if name != "matmul" and info.get("library") not in ("torch", "flowlab"):
            versions[info["library"]] = info["version"]
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    lines.append(
        f"Settings: batch {settings['batch']}, {settings['threads']} threads, hidden {settings['hidden']}, "
        f"{settings['rounds']} interleaved rounds x {settings['steps']} steps "
        f"after {settings['warmup']} warm-up, "
        f"{settings['sample_rounds']} timed draws of {SAMPLES} samples; "
        f"{settings['train_gflop_per_image']:.3f} GFLOP per training image, "
        f"{settings['sample_gflop_per_image']:.4f} per sample; run took {context['seconds']:.0f} s."
    )
    before, after = context["load_before"][0], context["load_after"][0]
    lines.append(
        f"Load average (1 min) before / after: {before:.1f} / {after:.1f} on {machine['cores']} cores"
        + (
            " (other processes competed for the CPU: absolute numbers are low, rely on the ratios)."
            if max(before, after) > 1.5
            else "."
        )
    )
    lines.append("")
    if mm:
        ranges = summary["matmul_range"]
        parts = [
            f"{shape}: {rate:.0f} GFLOP/s ({ranges[shape][0]:.0f}-{ranges[shape][1]:.0f})"
            for shape, rate in mm.items()
        ]
        lines.append(
            "Matmul rates (best of the rounds, the machine's capability; range over rounds): "
            + "; ".join(parts)
            + "."
        )
        lines.append("")
    lines += [
        "| implementation | train ms/step | train img/s | GFLOP/s | share of 128x1024x1024 fp32 "
        "| share of workload mix | sample img/s "
        "| sample share | peak RSS MiB | page faults/step | Flow Lab fp32 speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in data.impls:
        if name not in rows:
            continue
        row = rows[name]
        speedup = (ratios.get("flowlab", {}).get(name) or {}).get("median") if name != "flowlab" else None
        lines.append(
            f"| {name}: {IMPLEMENTATIONS[name].description} | {row['train_ms']:.1f} "
            f"(±{row['train_spread'] / 2:.0%}) "
            f"| {row['train_img_s']:.0f} | {row['train_gflops']:.0f} | {_fmt(row.get('train_share'), '.0%')} "
            f"| {_fmt(row.get('train_share_mix'), '.0%')} | {_fmt(row.get('sample_img_s'), '.0f')} "
            f"| {_fmt(row.get('sample_share'), '.0%')} "
            f"| {_fmt(row.get('peak_rss_mib'), '.0f')} | {row['faults_per_step']:.0f} "
            f"| {'' if speedup is None else f'{speedup:.2f}x'} |"
        )
    lines += [
        "",
        "(± is half the interquartile range of the single-step times, relative to the median. Workload mix: "
        "the nine matmul shapes of a step, forward and backward, timed alone; a step made only of them "
        "would reach 100%.)",
        "",
    ]
    for base in ratios:
        parts = [
            f"{other} {r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"
            for other, r in ratios[base].items()
            if r
        ]
        lines.append(
            f"Training speed, {base} / each (median of per-round ratios, range): " + "; ".join(parts) + "."
        )
    lines.append("")
    if summary["targets"]:
        lines += ["| target (issue 7) | measured | target | met |", "| --- | ---: | ---: | --- |"]
        for t in summary["targets"]:
            met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
            lines.append(f"| {t['what']} | {t['measured']} | {t['target']} | {met} |")
        lines.append("")
    if data.quality:
        lines += [
            f"Time to quality: bits/dim of 1,000 held-out real MNIST digits "
            f"after {settings['quality_seconds']:g} s "
            "of training on the other 9,000 (dequantized, logit preprocessing alpha 0.05 shared by all; "
            "evaluated in fp32).",
            "",
            "| implementation | training steps | training s | held-out bits/dim at the end "
            "| mean of the last third of the evaluations | bits/dim after each chunk |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, q in data.quality.items():
            curve = q.get("curve") or []
            tail = statistics.mean(point[2] for point in curve[-max(1, len(curve) // 3) :]) if curve else None
            points = ", ".join(f"{bits:.2f}" for _, _, bits in curve)
            lines.append(
                f"| {name} | {q['steps']} | {q['train_seconds']:.0f} | {q['bits_per_dim']:.3f} "
                f"| {_fmt(tail, '.3f')} | {points} |"
            )
            if "same_steps" in q:
                s = q["same_steps"]
                lines.append(
                    f"| {name}, after the same steps as flowlab fp32 | {s['steps']} "
                    f"| {s['train_seconds']:.0f} "
                    f"| {s['bits_per_dim']:.3f} | | |"
                )
        lines.append("")
    setups = [
        f"{name}: {', '.join(data.info[name].get('setup', []))}" for name in data.impls if name in data.info
    ]
    lines.append("Setup: " + "; ".join(setups) + ".")
    used = {IMPLEMENTATIONS[name].library for name in data.impls if name in rows}
    labels = {"torch": "plain"}
    scales = [f"{labels.get(lib, lib)}: {LOG_SCALE_OF[labels.get(lib, lib)]}" for lib in sorted(used)]
    lines.append("Log-scale bound: " + "; ".join(scales) + ".")
    if data.skipped:
        lines.append("Skipped: " + "; ".join(f"{k} ({v})" for k, v in data.skipped.items()) + ".")
    lines.append("")
    return "\n".join(lines)


RESULTS_HEADER = """# Benchmark results

Appended by `python -m bench` (see bench/NOTES.md for what each number means and how the speed was
won). Newest runs at the bottom.

"""


def publish(section: str, results: Path, append: bool) -> None:
    """Prints one run's Markdown section and, when ``append``, adds it to the results file."""
    print(section)
    if append:
        append_results(results, section)


def append_results(path: Path, section: str) -> None:
    """Appends one run's section to the results file, atomically."""
    path = Path(path)
    existing = path.read_text() if path.exists() else RESULTS_HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    text = existing.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    atomic_write_bytes(path, text.encode())
