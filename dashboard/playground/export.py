"""The playground's PNG export: the four live panels drawn with Pillow alone (no browser, no kaleido).

Panels are drawn at twice the output size and shrunk with a Lanczos filter, which anti-aliases the
lines and dots.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dashboard.playground.figures import block_means, density_limits, smooth
from dashboard.playground.style import (
    DATA_COLOUR,
    DENSITY_SCALE,
    ENTROPY_COLOUR,
    GAUSSIAN_COLOUR,
    GRID_COLOURS,
    MODEL_COLOUR,
)

SUPERSAMPLE = 2
PANEL = 560  # output pixels per panel side
TITLE = 44  # output pixels above each panel's plot
MARGIN = 18


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size * SUPERSAMPLE)


def colour_map(values: np.ndarray, stops: Sequence[Sequence]) -> np.ndarray:
    """Values in [0, 1] ``[...]`` -> uint8 RGB ``[..., 3]`` by linear interpolation between ``stops``."""
    positions = np.array([float(position) for position, _ in stops])
    colours = np.array([_rgb(colour) for _, colour in stops], dtype=np.float64)
    clipped = np.clip(values, 0, 1)
    channels = [np.interp(clipped, positions, colours[:, channel]) for channel in range(3)]
    return np.stack(channels, -1).round().astype(np.uint8)


@dataclass
class ExportPanels:
    """What the PNG shows; the same arrays the live panels use."""

    extent: float
    data: np.ndarray  # [n, 2]
    samples: np.ndarray  # [m, 2]
    log_density: np.ndarray  # [r, r], row i at y = axis[i]
    grid: np.ndarray  # [2, lines, points, 2]
    steps: Sequence[int]
    losses: Sequence[float]
    gaussian_nll: float | None
    entropy: float | None
    caption: str  # e.g. "RealNVP, 4 blocks, hidden [64, 64] · Two moons · step 1,200"


class _Panel:
    """One square panel: a title and its own plot canvas, so nothing drawn spills into a neighbour."""

    def __init__(self, image: Image.Image, left: int, top: int, title: str, extent: float) -> None:
        scale = SUPERSAMPLE
        self.image = image
        self.corner = (left * scale, (top + TITLE) * scale)
        self.size = (PANEL - TITLE) * scale
        self.extent = extent
        self.canvas = Image.new("RGB", (self.size, self.size), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.canvas, "RGBA")
        ImageDraw.Draw(image).text(
            (left * scale + 6, top * scale + 8), title, fill=(31, 36, 48), font=_font(22)
        )

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """World ``[..., 2]`` -> canvas pixels ``[..., 2]`` (y up), clipped far outside the canvas."""
        unit = np.clip((points + self.extent) / (2 * self.extent), -1, 2)
        return np.stack([unit[..., 0] * self.size, (1 - unit[..., 1]) * self.size], -1)

    def dots(self, points: np.ndarray, colour: str, radius: float, alpha: int) -> None:
        fill = (*_rgb(colour), alpha)
        r = radius * SUPERSAMPLE
        for x, y in self.pixels(points[np.isfinite(points).all(1)]):
            self.draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)

    def polyline(self, points: np.ndarray, colour: str, width: float) -> None:
        finite = points[np.isfinite(points).all(1)]
        if len(finite) > 1:
            pixel = self.pixels(finite)
            self.draw.line([tuple(p) for p in pixel], fill=_rgb(colour), width=round(width * SUPERSAMPLE))

    def heatmap(self, log_density: np.ndarray) -> None:
        density, top = density_limits(log_density)
        rgb = colour_map(density / top, DENSITY_SCALE)[::-1]  # row 0 is the top of the image
        self.canvas.paste(
            Image.fromarray(rgb, "RGB").resize((self.size, self.size), Image.Resampling.BICUBIC)
        )

    def finish(self) -> None:
        """Frames the canvas and pastes it into the whole image."""
        self.draw.rectangle([0, 0, self.size - 1, self.size - 1], outline=(201, 206, 214), width=2)
        self.image.paste(self.canvas, self.corner)


def _loss_panel(image: Image.Image, left: int, top: int, panels: ExportPanels) -> None:
    scale = SUPERSAMPLE
    draw = ImageDraw.Draw(image, "RGBA")
    draw.text((left * scale + 6, top * scale + 8), "Loss: NLL (nats)", fill=(31, 36, 48), font=_font(22))
    x0, y0 = (left + 56) * scale, (top + TITLE) * scale
    width, height = (PANEL - 70) * scale, (PANEL - TITLE - 40) * scale
    draw.rectangle([x0, y0, x0 + width, y0 + height], outline=(201, 206, 214), width=2)
    losses = np.asarray(panels.losses, dtype=np.float64)
    levels = [v for v in (panels.gaussian_nll, panels.entropy) if v is not None and math.isfinite(v)]
    if len(losses) == 0:
        draw.text(
            (x0 + 20 * scale, y0 + 20 * scale),
            "no steps yet: press Play",
            fill=(120, 120, 120),
            font=_font(18),
        )
        return
    recent = losses[len(losses) // 10 :]
    low = min([float(recent.min()), *levels]) - 0.3
    high = max([float(np.quantile(recent, 0.99)), *levels]) + 0.3
    steps = np.asarray(panels.steps, dtype=np.float64)
    first, last = float(steps[0]), max(float(steps[-1]), float(steps[0]) + 1)

    def to_pixel(step: np.ndarray, value: np.ndarray) -> np.ndarray:
        u = (step - first) / (last - first)
        v = (np.clip(value, low, high) - low) / (high - low)
        return np.stack([x0 + u * width, y0 + (1 - v) * height], -1)

    for tick in np.linspace(low, high, 5):
        y = to_pixel(np.array([first]), np.array([tick]))[0, 1]
        draw.line([(x0, y), (x0 + width, y)], fill=(236, 238, 242), width=2)
        draw.text((x0 - 52 * scale, y - 9 * scale), f"{tick:.2f}", fill=(110, 116, 126), font=_font(14))
    draw.text(
        (x0 + width - 150 * scale, y0 + height + 8 * scale),
        f"step {int(last):,}",
        fill=(110, 116, 126),
        font=_font(15),
    )
    xs, means = block_means(steps, 2000), block_means(losses, 2000)
    raw = to_pixel(xs, means)
    draw.line([tuple(p) for p in raw], fill=(197, 202, 211), width=2)
    smoothed = to_pixel(xs, smooth(means))
    draw.line([tuple(p) for p in smoothed], fill=_rgb(MODEL_COLOUR), width=3 * scale)
    for value, colour, text in (
        (panels.gaussian_nll, GAUSSIAN_COLOUR, "Gaussian fit"),
        (panels.entropy, ENTROPY_COLOUR, "target entropy (est.)"),
    ):
        if value is None or not math.isfinite(value):
            continue
        y = to_pixel(np.array([first]), np.array([value]))[0, 1]
        for start in range(0, width, 18 * scale):
            draw.line(
                [(x0 + start, y), (x0 + min(start + 10 * scale, width), y)],
                fill=_rgb(colour),
                width=2 * scale,
            )
        draw.text(
            (x0 + width - 250 * scale, y - 24 * scale),
            f"{text} {value:.2f}",
            fill=_rgb(colour),
            font=_font(15),
        )


def panels_png(panels: ExportPanels) -> bytes:
    """A 2 x 2 PNG of the live panels with a caption line; returns the encoded bytes."""
    scale = SUPERSAMPLE
    caption_height = 40
    width, height = 2 * PANEL + 3 * MARGIN, 2 * PANEL + 2 * MARGIN + caption_height
    image = Image.new("RGB", (width * scale, height * scale), (255, 255, 255))
    lefts, tops = (MARGIN, 2 * MARGIN + PANEL), (caption_height, caption_height + MARGIN + PANEL)
    ImageDraw.Draw(image).text(
        (MARGIN * scale, 10 * scale), panels.caption, fill=(31, 36, 48), font=_font(20)
    )

    samples = _Panel(image, lefts[0], tops[0], "Data vs model samples", panels.extent)
    samples.dots(panels.data, DATA_COLOUR, 2.2, 130)
    samples.dots(panels.samples, MODEL_COLOUR, 2.2, 150)

    density = _Panel(image, lefts[1], tops[0], "Learned density p(x), data on top", panels.extent)
    density.heatmap(panels.log_density)
    density.dots(panels.data, DATA_COLOUR, 1.3, 120)

    grid = _Panel(image, lefts[0], tops[1], "Warped grid: prior grid pushed through F", panels.extent)
    grid.dots(panels.data, "#B8BDC6", 1.6, 120)
    for family, colour in zip(panels.grid, GRID_COLOURS, strict=True):
        for line in family:
            grid.polyline(line, colour, 1.6)
    for panel in (samples, density, grid):
        panel.finish()

    _loss_panel(image, lefts[1], tops[1], panels)
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
