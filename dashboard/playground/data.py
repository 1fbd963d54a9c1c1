"""Targets for the Flow Playground: the 2D toys, the user's CSV of x,y, and points clicked onto a canvas.

Also the two reference levels drawn on the loss curve: the average NLL of a Gaussian fitted to the data
(what a flow with no couplings can reach) and an estimate of the target's entropy (the lowest expected
NLL any model can reach). No streamlit here: the page calls these and shows the messages.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from flows.data.toy import DEFAULT_NOISE, TOY_DATASETS

#: Menu label -> flows.data.toy name, in the order the page lists them.
TOY_TARGETS: dict[str, str] = {
    "Two moons": "moons",
    "Rings": "rings",
    "Checkerboard": "checkerboard",
    "Eight Gaussians": "8gaussians",
    "Spiral": "spiral",
}
UPLOAD_TARGET = "Your CSV (x,y)"
DRAWN_TARGET = "Draw your own"
TARGETS: tuple[str, ...] = (*TOY_TARGETS, UPLOAD_TARGET, DRAWN_TARGET)

#: The canvas every panel shows: [-CANVAS, CANVAS]^2 (the toys lie in [-4, 4]^2).
CANVAS = 4.5
#: Uploaded points are centred and scaled (the same factor in x and y) to this standard deviation.
UPLOAD_STD = 1.5
MAX_CSV_ROWS = 50_000
MAX_CSV_BYTES = 4_000_000
MIN_POINTS = 10
#: Spacing of the clickable spots on the drawing canvas.
DRAW_SPACING = 0.25
#: Noise of drawn points is at least this much, so a single click is a blob, not a spike.
MIN_DRAW_NOISE = 0.05


def default_noise(target: str) -> float:
    """The noise slider's starting value for a menu entry."""
    toy = TOY_TARGETS.get(target)
    return DEFAULT_NOISE[toy] if toy else 0.15


def toy_points(target: str, n: int, noise: float, seed: int) -> Tensor:
    """``n`` points float32 ``[n, 2]`` of the toy behind menu label ``target``."""
    if target not in TOY_TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TOY_TARGETS)}")
    generator = torch.Generator().manual_seed(seed)
    return TOY_DATASETS[TOY_TARGETS[target]](n, noise, generator)


@dataclass
class ParsedPoints:
    """Points read from a CSV, already centred and scaled onto the canvas."""

    points: Tensor  # [n, 2] float32
    columns: tuple[str, str]  # the two columns used, e.g. ("x", "y") or ("column 1", "column 2")
    scale: float  # canvas units per data unit
    centre: tuple[float, float]  # the data's mean, subtracted before scaling

    def describe(self) -> str:
        """One line for the page, e.g. "2,000 points from columns x, y (centred, scaled by 0.8)"."""
        factor = f"{self.scale:.3g}" if math.isfinite(self.scale) else "more than 1e308"
        return (
            f"{len(self.points):,} points from columns {self.columns[0]}, {self.columns[1]} "
            f"(centred and scaled by {factor} to fit the canvas)"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_points_csv(data: bytes) -> ParsedPoints:
    """Reads a CSV of x,y points (optional header; comma, semicolon, tab or space separated).

    Uses the columns named x and y when the header has them, otherwise the first two. Raises
    ValueError with a message for the user for anything else: binary or non-UTF-8 content, fewer than
    two columns, text in a number column, missing/NaN/infinite values, too few or too many rows.
    """
    if len(data) > MAX_CSV_BYTES:
        rows = data.count(b"\n")
        raise ValueError(
            f"the file is {len(data) / 1e6:.1f} MB with about {rows:,} rows; the playground takes at most "
            f"{MAX_CSV_ROWS:,} rows ({MAX_CSV_BYTES / 1e6:.0f} MB). Keep a random subset, e.g. "
            f"`shuf -n {MAX_CSV_ROWS} points.csv > small.csv` (then add the header back)."
        )
    if b"\x00" in data:
        raise ValueError("this is not a text file (it contains binary bytes); upload a CSV with columns x,y")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"the file is not UTF-8 text (byte {error.start} cannot be read); save it as a UTF-8 CSV "
            "with columns x,y"
        ) from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError("the file is empty; upload a CSV with two columns x,y and one point per row")
    delimiter = _delimiter(lines[0])
    if delimiter == " ":
        rows = [line.split() for line in lines]
    else:
        rows = [
            [cell.strip() for cell in row]
            for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
        ]
    header = None if all(_is_number(cell) for cell in rows[0] if cell) else rows[0]
    body = rows[1:] if header else rows
    first_row_number = 2 if header else 1
    width = len(header) if header else max(len(row) for row in body) if body else 0
    if width < 2:
        found = f"one column ({header[0]!r})" if header else "one column"
        raise ValueError(f"found {found}; the playground needs two columns, x and y, e.g. a line `0.5,-1.2`")
    columns, names = _choose_columns(header)
    if len(body) < MIN_POINTS:
        raise ValueError(f"found {len(body)} point(s); upload at least {MIN_POINTS} rows of x,y")
    if len(body) > MAX_CSV_ROWS:
        raise ValueError(
            f"found {len(body):,} rows; the playground takes at most {MAX_CSV_ROWS:,}. "
            f"Keep a random subset, e.g. `shuf -n {MAX_CSV_ROWS} points.csv > small.csv`."
        )
    values: list[tuple[float, float]] = []
    for offset, row in enumerate(body):
        line_number = first_row_number + offset
        pair = []
        for column, name in zip(columns, names, strict=True):
            cell = row[column] if column < len(row) else ""
            if cell == "" or cell.lower() in ("nan", "na", "null", "none"):
                raise ValueError(
                    f"line {line_number}: column {name} is missing or NaN; every row needs two numbers "
                    "(delete or fill that row)"
                )
            try:
                number = float(cell)
            except ValueError:
                raise ValueError(
                    f"line {line_number}: {cell[:30]!r} in column {name} is not a number; the file must "
                    "hold numbers only (one optional header line such as `x,y`)"
                ) from None
            if not math.isfinite(number):
                raise ValueError(
                    f"line {line_number}: column {name} is {cell!r}, not a finite number; remove that row"
                )
            pair.append(number)
        values.append((pair[0], pair[1]))
    return _centre_and_scale(torch.tensor(values, dtype=torch.float64), names)


#: Relative spread below which float64 cannot tell the points apart reliably (they differ in the last digits).
MIN_RELATIVE_SPREAD = 1e-9


def _centre_and_scale(points: Tensor, names: tuple[str, str]) -> ParsedPoints:
    """Centres float64 points and scales them to UPLOAD_STD, safely for any finite values.

    Values such as 1e300 would overflow the mean and the variance (inf, then a scale of 0 that collapses
    every point to the origin), so the points are first divided by their largest magnitude, a power of
    two (exact): the statistics are then computed on numbers below 2.
    """
    magnitude = float(points.abs().max())
    if magnitude == 0:
        raise ValueError("all points are (0, 0); upload points that spread out in x or y")
    unit = 2.0 ** math.floor(math.log2(magnitude))  # 2**1023 at most: no overflow
    normalised = points / unit  # in (-2, 2), exact
    centre = normalised.mean(0)
    spread = float(normalised.var(0, unbiased=False).mean().sqrt())
    if spread == 0:
        raise ValueError("all points are the same; upload points that spread out in x or y")
    if spread < MIN_RELATIVE_SPREAD:
        raise ValueError(
            f"the points differ by less than {MIN_RELATIVE_SPREAD:g} of their size ({magnitude:.3g}), too "
            "little to tell them apart; subtract a common offset from x and y first"
        )
    scaled = ((normalised - centre) * (UPLOAD_STD / spread)).to(torch.float32)
    scale = UPLOAD_STD / spread / unit  # canvas units per data unit; may be as small as 1e-308
    origin = centre * unit
    return ParsedPoints(scaled, names, scale, (float(origin[0]), float(origin[1])))


def _delimiter(first_line: str) -> str:
    for candidate in (",", ";", "\t"):
        if candidate in first_line:
            return candidate
    return " "


def _choose_columns(header: list[str] | None) -> tuple[tuple[int, int], tuple[str, str]]:
    """Column indices and names: x and y by name when present, else the first two."""
    if header:
        lowered = [name.strip().lower() for name in header]
        if "x" in lowered and "y" in lowered:
            return (lowered.index("x"), lowered.index("y")), ("x", "y")
        return (0, 1), (header[0] or "column 1", header[1] or "column 2")
    return (0, 1), ("1", "2")


def drawn_points(spots: Tensor, n: int, noise: float, seed: int) -> Tensor:
    """``n`` points around the clicked ``spots [m, 2]``: a random spot plus N(0, noise^2) jitter each.

    This is a mixture of m equal Gaussians; :func:`drawn_entropy` knows its density.
    """
    if len(spots) == 0:
        raise ValueError("no points drawn yet; click the canvas (or drag a box) to add some")
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(spots), (n,), generator=generator)
    jitter = max(noise, MIN_DRAW_NOISE) * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return (spots.to(torch.float64)[pick] + jitter).to(torch.float32)


def mixture_log_density(x: Tensor, centres: Tensor, std: float) -> Tensor:
    """log p(x) of an equal mixture of N(centre, std^2 I) in 2D: ``[n, 2]`` -> ``[n]``."""
    squared = torch.cdist(x.double(), centres.double()).square()  # [n, m]
    log_components = -squared / (2 * std**2) - math.log(2 * math.pi * std**2)
    return torch.logsumexp(log_components, 1) - math.log(len(centres))


def drawn_entropy(spots: Tensor, noise: float, samples: int = 20_000, seed: int = 1) -> float:
    """Monte Carlo estimate of the entropy (nats) of the drawn mixture: -mean log p over fresh samples."""
    x = drawn_points(spots, samples, noise, seed)
    return float(-mixture_log_density(x, spots, max(noise, MIN_DRAW_NOISE)).mean())


def knn_entropy(points: Tensor, k: int = 4) -> float:
    """Kozachenko-Leonenko k-nearest-neighbour estimate of the differential entropy (nats) of 2D points.

    H ~ psi(n) - psi(k) + log(pi) + (2/n) sum_i log r_i, with r_i the distance from point i to its k-th
    nearest neighbour (Kozachenko & Leonenko 1987; Kraskov et al. 2004, eq. 20). Duplicated points
    would give r = 0, so distances are floored at 1e-12.
    """
    x = points.double()
    n = len(x)
    if n <= k:
        raise ValueError(f"need more than k = {k} points for a k-nearest-neighbour estimate, got {n}")
    log_radius = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, 2048):  # [chunk, n] distances at a time
        distances = torch.cdist(x[start : start + 2048], x)
        kth = distances.topk(k + 1, dim=1, largest=False).values[:, k]  # index 0 is the point itself
        log_radius[start : start + 2048] = kth.clamp_min(1e-12).log()
    digamma = torch.special.digamma
    value = digamma(torch.tensor(float(n))) - digamma(torch.tensor(float(k))) + math.log(math.pi)
    return float(value + 2 * log_radius.mean())


def gaussian_fit_nll(points: Tensor) -> float:
    """Average NLL (nats) of ``points [n, 2]`` under the Gaussian fitted to them by maximum likelihood.

    With the MLE mean and covariance S this is (d/2) log(2 pi e) + (1/2) log det S, d = 2.
    """
    x = points.double()
    covariance = torch.cov(x.T, correction=0)
    return float(math.log(2 * math.pi * math.e) + 0.5 * torch.logdet(covariance))


def toy_entropy(target: str, noise: float, samples: int = 5000, seed: int = 12345) -> float:
    """Estimated entropy (nats) of a toy target: the kNN estimate on fresh samples (:func:`knn_entropy`)."""
    return knn_entropy(toy_points(target, samples, noise, seed))
