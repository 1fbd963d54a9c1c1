"""Pictures of a flow's samples: PNG encoding (zlib only), digit grids and 2D densities."""

from __future__ import annotations

import math
import struct
import threading
import zlib
from pathlib import Path

import torch
from torch import Tensor, nn

from ..image.models import grid_labels
from ..infra import atomic_write_bytes

#: Seed of the latent draws of sample pictures, so successive pictures show the same latents.
SAMPLE_SEED = 0
#: Points drawn for the 2D density picture of a toy model.
TOY_SAMPLE_POINTS = 20000
#: Serialises the global-RNG juggling of torch.random.fork_rng between threads.
RNG_LOCK = threading.Lock()


def png_bytes(image: Tensor) -> bytes:
    """Encodes a uint8 image ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB) as PNG, with zlib only."""
    if image.dtype != torch.uint8 or image.dim() not in (2, 3) or (image.dim() == 3 and image.shape[2] != 3):
        raise ValueError(f"expected a uint8 image [H, W] or [H, W, 3], got {image.dtype} {list(image.shape)}")
    height, width = image.shape[:2]
    colour_type = 0 if image.dim() == 2 else 2
    rows = image.reshape(height, -1).contiguous().cpu()
    # Each scanline starts with filter byte 0 (none).
    raw = torch.cat([torch.zeros(height, 1, dtype=torch.uint8), rows], dim=1).numpy().tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def write_png(path: str | Path, image: Tensor) -> None:
    """Atomically writes a uint8 image as a PNG file."""
    atomic_write_bytes(path, png_bytes(image))


def image_grid(images: Tensor, columns: int = 8, padding: int = 2) -> Tensor:
    """Tiles ``[N, H, W]`` values in [0, 1] into one uint8 image with ``padding`` pixels between tiles."""
    count, height, width = images.shape
    rows = math.ceil(count / columns)
    grid = torch.zeros(rows * (height + padding) + padding, columns * (width + padding) + padding)
    pixels = images.detach().float().clamp(0, 1).cpu()
    for index in range(count):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top : top + height, left : left + width] = pixels[index]
    return (grid * 255).round().to(torch.uint8)


def density_image(points: Tensor, size: int = 256, extent: float = 4.0) -> Tensor:
    """A 2D histogram of ``[N, 2]`` points over [-extent, extent]^2 as a uint8 image, y pointing up."""
    xy = points.detach().float().cpu()
    xy = xy[torch.isfinite(xy).all(1)]
    cells = ((xy + extent) / (2 * extent) * size).floor().long()
    inside = ((cells >= 0) & (cells < size)).all(1)
    cells = cells[inside]
    counts = torch.zeros(size * size)
    counts.index_add_(0, (size - 1 - cells[:, 1]) * size + cells[:, 0], torch.ones(len(cells)))
    counts = counts.reshape(size, size)
    scaled = counts / counts.max().clamp_min(1)
    return (scaled.sqrt() * 255).round().to(torch.uint8)


@torch.no_grad()
def sample_image(
    model: nn.Module, is_image: bool, count: int, columns: int | None = None, seed: int = SAMPLE_SEED
) -> Tensor:
    """uint8 picture of ``count`` samples drawn with a fixed seed: a grid of 28 x 28 digits
    (``columns`` wide, square by default) or a 2D density of toy points. The model's mode is kept."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    cuda_devices = [device] if device.type == "cuda" else []
    labels = grid_labels(model, count)  # a conditional model: one class per column
    with RNG_LOCK, torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        drawn = model.sample(count) if labels is None else model.sample(count, labels.to(device))
        samples = drawn.float().cpu()
    model.train(was_training)
    if not is_image:
        return density_image(samples)
    if labels is not None:
        columns = model.num_classes
    return image_grid(samples.reshape(count, 28, 28), columns=columns or math.ceil(math.sqrt(count)))
