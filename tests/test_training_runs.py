"""Run folders: atomic files, PNG encoding, metrics lines, checkpoints, listing."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import torch

from flows.training import TrainConfig, images, list_runs, runs


def _decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, colour type, raw scanlines) of a PNG, checking signature and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks[kind] = chunks.get(kind, b"") + body
        position += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and b"IEND" in chunks
    return width, height, colour, zlib.decompress(chunks[b"IDAT"])


@pytest.mark.parametrize("shape", [(5, 7), (4, 3, 3)])
def test_png_holds_exactly_the_pixels(tmp_path: Path, shape: tuple[int, ...]) -> None:
    image = torch.randint(0, 256, shape, dtype=torch.uint8)
    images.write_png(tmp_path / "a.png", image)
    width, height, colour, raw = _decode_png((tmp_path / "a.png").read_bytes())
    assert (height, width, colour) == (shape[0], shape[1], 0 if len(shape) == 2 else 2)
    rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(height, -1)
    assert (rows[:, 0] == 0).all()  # filter type "none"
    assert torch.equal(rows[:, 1:], image.reshape(height, -1))
    pil = pytest.importorskip("PIL.Image", reason="Pillow (a streamlit dependency) absent")
    assert pil.open(tmp_path / "a.png").tobytes() == image.numpy().tobytes()


def test_image_grid_and_density_image() -> None:
    grid = images.image_grid(torch.ones(3, 4, 4), columns=2, padding=1)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1) and grid.dtype == torch.uint8
    assert grid[1:5, 1:5].eq(255).all() and grid[6:10, 6:10].eq(0).all()  # the fourth tile is empty
    density = images.density_image(torch.tensor([[3.9, 3.9], [3.9, 3.9], [-3.9, -3.9], [9.0, 0.0]]), size=8)
    assert density[0, 7] == 255 and density[7, 0] > 0  # two points top right, one bottom left
    assert int(density.sum()) == 255 + int(density[7, 0])  # the point outside the extent is dropped


def test_metrics_lines_are_flushed_at_once_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    writer = runs.MetricsWriter(tmp_path / runs.METRICS_FILE)
    writer.write({"kind": "step", "step": 1, "loss": float("nan"), "extra": 3})
    first = json.loads((tmp_path / runs.METRICS_FILE).read_text())  # readable while still open
    assert set(runs.METRIC_KEYS) <= set(first) and first["loss"] is None and first["extra"] == 3
    writer.write({"kind": "step", "step": 2, "loss": 1.5})
    writer.write({"kind": "eval", "step": 3, "test_bits_per_dim": 2.0})
    writer.close()
    with (tmp_path / runs.METRICS_FILE).open("a") as handle:
        handle.write('{"kind": "step", "st')  # a kill in the middle of a line
    assert [r["step"] for r in runs.read_metrics(tmp_path)] == [1, 2, 3]
    runs.truncate_metrics(tmp_path, 2)
    assert [r["step"] for r in runs.read_metrics(tmp_path)] == [1, 2]


def test_create_run_writes_config_and_status_and_is_listed(tmp_path: Path) -> None:
    config = TrainConfig(dataset="moons", steps=7)
    first = runs.create_run(tmp_path, config, "alpha")
    second = runs.create_run(tmp_path, config)
    assert runs.read_config(first) == config
    assert runs.read_status(first)["state"] == "created"
    with pytest.raises(ValueError, match="already exists"):
        runs.create_run(tmp_path, config, "alpha")
    with pytest.raises(ValueError, match="may hold only"):
        runs.create_run(tmp_path, config, "../escape")
    (tmp_path / "not-a-run").mkdir()
    listed = list_runs(tmp_path)
    assert {info.path for info in listed} == {first, second}
    assert all(info.steps == 7 and info.state == "created" and info.step == 0 for info in listed)
    read: list[Path] = []
    reader = lambda folder: read.append(folder) or runs.run_info(folder)  # noqa: E731 (e.g. a cached reader)
    assert [info.path for info in list_runs(tmp_path, read=reader)] == [info.path for info in listed]
    assert sorted(read) == sorted([first, second])  # each run folder read once, through ``read``


@pytest.mark.parametrize("state", ["running", "queued"])
def test_a_live_status_of_a_dead_process_reads_interrupted(tmp_path: Path, state: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = runs.create_run(tmp_path, TrainConfig(dataset="moons"))
    runs.write_status(run, state, step=3)
    status = runs.read_status(run)
    assert runs.effective_state(status) == state  # this process is alive
    status["pid"] = dead.pid
    assert runs.effective_state(status) == "interrupted"


def test_checkpoints_load_only_plain_data(tmp_path: Path) -> None:
    state = {"step": 3, "model": {"w": torch.ones(2)}, "rng": {"python": (3, tuple(range(5)), None)}}
    runs.save_checkpoint(tmp_path / "ok.pt", state)
    loaded = runs.load_checkpoint(tmp_path / "ok.pt")
    assert loaded["step"] == 3 and torch.equal(loaded["model"]["w"], torch.ones(2))
    torch.save({"step": 1, "model": {}, "payload": Path("x")}, tmp_path / "evil.pt")  # an arbitrary object
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint: it holds Python objects"):
        runs.load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError):
        runs.load_checkpoint(tmp_path / "missing.pt")


WRITER = """
import sys, torch
from flows.training import runs
path = sys.argv[1]
step = 0
while True:
    step += 1
    runs.save_checkpoint(path, {"step": step, "model": {"w": torch.full((2_000_000,), float(step))}})
    print(step, flush=True)
"""


def test_kill_9_while_writing_never_leaves_an_unreadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    repo = Path(__file__).resolve().parents[1]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=repo, stdout=subprocess.PIPE, text=True
    )
    try:
        for _ in range(3):  # wait for a few complete checkpoints, then kill in the middle of the next ones
            assert writer.stdout.readline(), "the writer died"
        time.sleep(0.013)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    state = runs.load_checkpoint(path)  # the kill usually lands mid-write, leaving a temp file beside it
    assert state["step"] >= 3
    assert torch.equal(state["model"]["w"], torch.full((2_000_000,), float(state["step"])))
    runs.remove_stale_temp_files(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
