"""A judge of "looks like the data": a small CNN trained on the real images of a dataset.

It is not a paper metric (not the Inception score, not FID): a classifier of a few thousand
parameters trained here in under a minute, whose numbers are only meaningful beside the same
numbers for real images, which every score carries as its reference. For a set of images it gives

* ``recognised``: the share whose top data-class probability is >= 0.9,
* ``class_entropy_bits``: the entropy of the histogram of predicted classes (all ten classes
  equally often: log2 10 = 3.32 bits; one class only: 0),
* ``frechet``: the Frechet distance between Gaussians fitted to the classifier's penultimate
  features of these images and of held-out real images,
  ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) (Heusel et al. 2017, arXiv:1706.08500,
  with this small net in place of Inception).

Besides the ten classes the net has an eleventh, "not an image of the dataset", trained on
synthetic junk (uniform noise, pixel-shuffled images, blurred noise, and blobs: the average of four
images with or without pixel noise on top, what an undertrained flow draws), so that noise and
blobs are not confidently called a digit. The classifier is cached under the data folder as
safetensors with its held-out accuracy in a JSON file beside it; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as functional
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from ..data import default_data_dir, dequantize, load_mnist
from ..data.mnist import NUM_CLASSES, find_file
from ..infra import atomic_write_bytes

#: Top data-class probability from which an image counts as recognised.
RECOGNISED_PROBABILITY = 0.9
#: Index of the extra "junk" class (0..9 are the dataset's classes).
JUNK_CLASS = NUM_CLASSES
#: Bump when the net, its training or its data change: a cached judge of another version is retrained.
JUDGE_VERSION = 2
#: Held-out images when only the 10,000-image test split is present (the first 8,000 train the judge).
TEST_ONLY_HELDOUT = 2000
#: At most this many training images (all 60,000 of Fashion-MNIST would take minutes).
MAX_TRAIN_IMAGES = 12000
EPOCHS = 6
BATCH_SIZE = 128
LEARNING_RATE = 3e-3
SEED = 0
FEATURES = 64
CACHE_FOLDER = ".flowlab-judge"
CACHE_DIR_ENV = "FLOWLAB_JUDGE_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]


class Classifier(nn.Module):
    """conv 3x3 (16) - pool - conv 3x3 (32) - pool - linear 64 (the features) - linear 11 (logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.hidden = nn.Linear(32 * 7 * 7, FEATURES)
        self.out = nn.Linear(FEATURES, NUM_CLASSES + 1)

    def features(self, x: Tensor) -> Tensor:
        """``x [batch, 1, 28, 28]`` in [0, 1] -> penultimate features ``[batch, 64]``."""
        h = functional.max_pool2d(functional.relu(self.conv1(2 * x - 1)), 2)  # [B, 16, 14, 14]
        h = functional.max_pool2d(functional.relu(self.conv2(h)), 2)  # [B, 32, 7, 7]
        return functional.relu(self.hidden(h.flatten(1)))  # [B, 64]

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[batch, 11]``: the ten classes, then "junk"."""
        return self.out(self.features(x))


@dataclass
class SampleScore:
    """The judge's verdict on a set of images (see the module docstring)."""

    count: int  # images scored
    recognised: float  # share with top data-class probability >= 0.9
    class_entropy_bits: float  # entropy of the predicted-class histogram (3.32 = ten classes evenly)
    frechet: float  # Frechet distance of penultimate features to the held-out real images
    class_counts: list[int]  # images predicted as each class 0..9

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def as_images(images: Tensor) -> Tensor:
    """``[N, 784]``, ``[N, 28, 28]`` or ``[N, 1, 28, 28]``, uint8 (0..255) or float in [0, 1] -> float
    ``[N, 1, 28, 28]`` clamped to [0, 1]."""
    if not isinstance(images, Tensor) or images.ndim not in (2, 3, 4) or images[0].numel() != 28 * 28:
        raise ValueError(
            f"expected images of 28 x 28 pixels ([N, 784], [N, 28, 28] or [N, 1, 28, 28]), "
            f"got {list(images.shape) if isinstance(images, Tensor) else type(images).__name__}"
        )
    if images.dtype == torch.uint8:
        images = images.float() / 255
    return images.detach().float().reshape(len(images), 1, 28, 28).clamp(0, 1)


def junk_images(real: Tensor, generator: torch.Generator) -> Tensor:
    """Images that are not of the dataset, as many as ``real`` (float ``[N, 1, 28, 28]``), in equal
    shares: uniform noise; the pixels of real images shuffled; blurred noise at random contrast; blobs,
    the mean of four real images, half of them with uniform noise of up to 0.6 added."""
    count = len(real)
    noise = torch.rand(real.shape, generator=generator)
    order = torch.argsort(torch.rand(count, 28 * 28, generator=generator), dim=1)
    shuffled = torch.gather(real.reshape(count, -1), 1, order).reshape(real.shape)
    blurred = functional.avg_pool2d(noise, 5, stride=1, padding=2, count_include_pad=False)
    blurred = ((blurred - 0.5) * (1 + 8 * torch.rand(count, 1, 1, 1, generator=generator)) + 0.5).clamp(0, 1)
    mixes = torch.stack([real[torch.randperm(count, generator=generator)] for _ in range(4)]).mean(0)
    speckle = (
        0.6 * torch.rand(count, 1, 1, 1, generator=generator) * torch.rand(real.shape, generator=generator)
    )
    speckled = torch.rand(count, 1, 1, 1, generator=generator) < 0.5
    blobs = torch.where(speckled, (mixes + speckle).clamp(0, 1), mixes)
    kind = torch.randint(4, (count, 1, 1, 1), generator=generator)
    return torch.where(
        kind == 0, noise, torch.where(kind == 1, shuffled, torch.where(kind == 2, blurred, blobs))
    )


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``[N, D]`` and ``[M, D]`` (float64)."""
    a, b = features_a.double(), features_b.double()
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr (S_a S_b)^(1/2) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric PSD matrix.
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mean_a - mean_b).square().sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_root
    return max(0.0, float(distance))


def _entropy_bits(counts: Tensor) -> float:
    share = counts.double() / max(1, int(counts.sum()))
    share = share[share > 0]
    return float(-(share * share.log2()).sum()) + 0.0


class Judge:
    """A trained :class:`Classifier` with the held-out real images it compares samples with.

    Attributes: ``dataset``, ``accuracy`` (on the held-out images, ten classes), ``trained`` (True
    when this object trained the net, False when it came from the cache), ``info`` (the JSON beside
    the cache), ``real`` (the score of held-out real images, the reference, computed lazily).
    """

    def __init__(self, classifier: Classifier, heldout: Tensor, info: dict, trained: bool) -> None:
        self.classifier = classifier.eval()
        self.info = info
        self.dataset: str = info["dataset"]
        self.accuracy: float = info["heldout_accuracy"]
        self.trained = trained
        half = len(heldout) // 2
        # The first half of the held-out images is the target of every Frechet distance; the second
        # half is scored as the real reference, so real images never meet themselves.
        self._reference_features = self._features(heldout[:half])
        self._real_images = heldout[half:]
        self._real_scores: dict[int, SampleScore] = {}

    @torch.no_grad()
    def _features(self, images: Tensor) -> Tensor:
        return torch.cat([self.classifier.features(chunk) for chunk in images.split(1000)])

    @torch.no_grad()
    def score(self, images: Tensor) -> SampleScore:
        """Scores ``images`` (see :func:`as_images` for the shapes); at least 2 images."""
        x = as_images(images)
        if len(x) < 2:
            raise ValueError(f"need at least 2 images to fit a Frechet distance, got {len(x)}")
        features = self._features(x)
        probabilities = self.classifier.out(features).softmax(1)[:, :NUM_CLASSES]  # [N, 10]
        top_probability, predicted = probabilities.max(1)
        counts = torch.bincount(predicted, minlength=NUM_CLASSES)
        return SampleScore(
            count=len(x),
            recognised=float((top_probability >= RECOGNISED_PROBABILITY).double().mean()),
            class_entropy_bits=_entropy_bits(counts),
            frechet=frechet_distance(features, self._reference_features),
            class_counts=[int(c) for c in counts],
        )

    def real_score(self, count: int | None = None) -> SampleScore:
        """The same score for ``count`` held-out real images (all of the reference half by default):
        what a perfect model's samples would get with that many images (the Frechet distance grows as
        the count shrinks, so compare equal counts)."""
        available = len(self._real_images)
        count = available if count is None else max(2, min(int(count), available))
        if count not in self._real_scores:
            self._real_scores[count] = self.score(self._real_images[:count])
        return self._real_scores[count]


def default_cache_dir(data_dir: Path) -> Path:
    """``$FLOWLAB_JUDGE_DIR``, else ``<data_dir>/.flowlab-judge`` where that is writable, else
    ``data/judge`` in the repository (Debian's Fashion-MNIST folder is read-only)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    candidate = data_dir / CACHE_FOLDER
    if os.access(candidate if candidate.exists() else data_dir, os.W_OK):
        return candidate
    return REPO_ROOT / "data" / "judge"


def judge_data(dataset: str, data_dir: Path) -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    """``(train images, train labels, held-out images, held-out labels, split description)``, images
    float ``[N, 1, 28, 28]``, dequantized once with a fixed seed: the train split when present (at most
    MAX_TRAIN_IMAGES of it) with the test split held out, else the test split's first 8,000 / last 2,000."""
    generator = torch.Generator().manual_seed(SEED)
    test_images, test_labels = load_mnist(data_dir, "test", dataset)
    has_train = find_file(data_dir, "train-images-idx3-ubyte") is not None
    if has_train:
        train_images, train_labels = load_mnist(data_dir, "train", dataset)
        train_images, train_labels = train_images[:MAX_TRAIN_IMAGES], train_labels[:MAX_TRAIN_IMAGES]
        split = f"train[:{len(train_images)}] / test ({len(test_images)})"
    else:
        cut = len(test_images) - TEST_ONLY_HELDOUT
        train_images, train_labels = test_images[:cut], test_labels[:cut]
        test_images, test_labels = test_images[cut:], test_labels[cut:]
        split = f"test[:{cut}] / test[{cut}:]"

    def prepare(images: Tensor) -> Tensor:
        return dequantize(images, generator).unsqueeze(1)  # [N, 1, 28, 28]

    return prepare(train_images), train_labels, prepare(test_images), test_labels, split


def train_classifier(
    images: Tensor, labels: Tensor, on_progress: Callable[[str], None] | None = None
) -> Classifier:
    """Trains a fresh :class:`Classifier` on ``images [N, 1, 28, 28]`` and ``labels [N]`` plus as many
    junk images (class 10), Adam, EPOCHS epochs; deterministic for a given thread count. Trains with
    gradients on even when called under ``torch.no_grad()`` (e.g. from an evaluation)."""
    with torch.enable_grad():
        return _train(images, labels, on_progress)


def _train(images: Tensor, labels: Tensor, on_progress: Callable[[str], None] | None) -> Classifier:
    torch.manual_seed(SEED)
    classifier = Classifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(SEED)
    steps_per_epoch = math.ceil(len(images) / BATCH_SIZE)
    total_steps = EPOCHS * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, LEARNING_RATE, total_steps=total_steps)
    classifier.train()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(images), generator=generator)
        for indices in order.split(BATCH_SIZE):
            real = images[indices]
            # Random shifts of up to 2 pixels, so the judge is not fooled by position alone.
            dx, dy = torch.randint(-2, 3, (2,), generator=generator).tolist()
            real = torch.roll(real, shifts=(dy, dx), dims=(2, 3))
            junk = junk_images(real, generator)[: len(real) // 4]
            x = torch.cat([real, junk])
            y = torch.cat([labels[indices], torch.full((len(junk),), JUNK_CLASS)])
            loss = functional.cross_entropy(classifier(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if on_progress is not None:
            on_progress(f"judge: epoch {epoch + 1}/{EPOCHS}, loss {loss.item():.3f}")
    return classifier.eval()


@torch.no_grad()
def accuracy(classifier: Classifier, images: Tensor, labels: Tensor) -> float:
    """Share of ``images`` whose top data class (junk left out) is the label."""
    predicted = torch.cat([classifier(chunk)[:, :NUM_CLASSES].argmax(1) for chunk in images.split(1000)])
    return float((predicted == labels).double().mean())


def _cache_paths(cache_dir: Path, dataset: str) -> tuple[Path, Path]:
    return cache_dir / f"{dataset}-classifier.safetensors", cache_dir / f"{dataset}-classifier.json"


def _read_cache(cache_dir: Path, dataset: str, expected: dict) -> tuple[Classifier, dict] | None:
    """The cached classifier and its info if both files exist and match ``expected``; else None."""
    weights_path, info_path = _cache_paths(cache_dir, dataset)
    try:
        info = json.loads(info_path.read_text())
        state = load_safetensors(weights_path.read_bytes())
        if any(info.get(key) != value for key, value in expected.items()):
            return None
        classifier = Classifier()
        classifier.load_state_dict(state)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError):
        return None  # absent, damaged, or from another version: train again
    return classifier, info


def judge_cached(
    dataset: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> bool:
    """True when a classifier of this version for ``dataset`` is in the cache (so loading is quick)."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir(dataset)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(data_dir)
    weights_path, info_path = _cache_paths(cache_dir, dataset)
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return False
    return weights_path.is_file() and info.get("version") == JUDGE_VERSION and info.get("dataset") == dataset


def load_judge(
    dataset: str = "mnist",
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> Judge:
    """The judge of ``dataset`` ("mnist" or "fashion-mnist"), from the cache or trained now.

    ``data_dir`` holds the IDX files (the dataset's default folder if None); the classifier is
    cached in ``cache_dir`` (see :func:`default_cache_dir`) as ``<dataset>-classifier.safetensors``
    with ``<dataset>-classifier.json`` (its held-out accuracy, split and version) beside it, both
    written atomically. ``on_progress(message)`` hears about training (the library never prints).
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir(dataset)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(data_dir)
    train_images, train_labels, heldout_images, heldout_labels, split = judge_data(dataset, data_dir)
    expected = {"version": JUDGE_VERSION, "dataset": dataset, "split": split}
    cached = _read_cache(cache_dir, dataset, expected)
    if cached is not None:
        classifier, info = cached
        return Judge(classifier, heldout_images, info, trained=False)
    if on_progress is not None:
        on_progress(
            f"judge: training the sample judge on {split} ({EPOCHS} epochs, the first time only; "
            "cached afterwards)"
        )
    started = time.perf_counter()
    classifier = train_classifier(train_images, train_labels, on_progress)
    info = {
        **expected,
        "train_images": len(train_images),
        "heldout_images": len(heldout_images),
        "heldout_accuracy": accuracy(classifier, heldout_images, heldout_labels),
        "train_seconds": round(time.perf_counter() - started, 1),
        "recognised_probability": RECOGNISED_PROBABILITY,
    }
    weights_path, info_path = _cache_paths(cache_dir, dataset)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        state = {name: value.contiguous() for name, value in classifier.state_dict().items()}
        atomic_write_bytes(weights_path, save_safetensors(state))
        atomic_write_bytes(info_path, (json.dumps(info, indent=2) + "\n").encode())
    except OSError as error:
        if on_progress is not None:
            on_progress(f"judge: could not cache the classifier in {cache_dir} ({error}); it stays in memory")
    if on_progress is not None:
        on_progress(
            f"judge: trained on {split} in {info['train_seconds']} s, "
            f"held-out accuracy {info['heldout_accuracy']:.1%}"
        )
    return Judge(classifier, heldout_images, info, trained=True)
