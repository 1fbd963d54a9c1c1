"""Images for the pages: digit grids and 2D densities as crisp, enlarged uint8 arrays for ``st.image``."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from flows.training.images import density_image, image_grid

#: Screen pixels per image pixel by default: 28 x 28 digits stay sharp on a projector.
DEFAULT_ZOOM = 4


def enlarge(image: Tensor | np.ndarray, zoom: int = DEFAULT_ZOOM) -> np.ndarray:
    """Repeats every pixel ``zoom`` x ``zoom`` times (nearest neighbour), so browsers do not blur digits."""
    if zoom < 1:
        raise ValueError(f"zoom must be a positive integer, got {zoom}")
    array = image.cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    return array.repeat(zoom, axis=0).repeat(zoom, axis=1)


def digit_grid(images: Tensor, columns: int | None = None, zoom: int = DEFAULT_ZOOM) -> np.ndarray:
    """A uint8 grid of digits. ``images``: ``[N, 784]`` or ``[N, 28, 28]``, floats in [0, 1] or uint8."""
    if images.dim() not in (2, 3) or images[0].numel() != 784:
        raise ValueError(f"expected digits [N, 784] or [N, 28, 28], got {list(images.shape)}")
    pixels = images.reshape(len(images), 28, 28)
    if pixels.dtype == torch.uint8:
        pixels = pixels.float() / 255
    columns = columns or math.ceil(math.sqrt(len(pixels)))
    return enlarge(image_grid(pixels, columns=columns), zoom)


def digit_strip(images: Tensor, zoom: int = DEFAULT_ZOOM) -> np.ndarray:
    """Digits side by side in one row (e.g. an interpolation from one digit to another)."""
    return digit_grid(images, columns=len(images), zoom=zoom)


def density(points: Tensor, size: int = 256, extent: float = 4.0) -> np.ndarray:
    """A 2D histogram image of ``[N, 2]`` points over [-extent, extent]^2 (bright = dense), y up."""
    return density_image(points, size=size, extent=extent).cpu().numpy()
