"""The Home page's parts: a Gaussian pushed into two moons by a RealNVP, the MNIST status and download."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from dashboard import access
from dashboard.pages import DEFAULT_PAGE, PAGES
from dashboard.services.threads import one_thread
from dashboard.text import plain
from flows import RealNVP
from flows.data import default_data_dir
from flows.data.download import DownloadError, download_mnist
from flows.data.mnist import DATASETS, find_file
from flows.training import TrainConfig, Trainer

# --- the picture: a small RealNVP trained on two moons ----------------------------------------------

DEMO_BLOCKS = 4
DEMO_HIDDEN = (32, 32)
DEMO_STEPS = 400
DEMO_POINTS = 2000
CIRCLE_RADII = (1.0,)

#: The demo's training settings: the library's config for a 4-block RealNVP on two moons, trained in
#: seconds (a high constant-then-cosine lr to zero, large batches, no files).
DEMO_CONFIG = replace(
    TrainConfig(),
    model="realnvp",
    dataset="moons",
    blocks=DEMO_BLOCKS,
    hidden=list(DEMO_HIDDEN),
    activation="relu",
    toy_points=20_000,
    toy_noise=0.05,
    batch_size=512,
    lr=1e-2,
    warmup_steps=0,
    schedule="cosine",
    min_lr_fraction=0.0,
    steps=DEMO_STEPS,
    eval_every=0,
    checkpoint_every=0,
    device="cpu",
)


def fit_moons_flow(steps: int = DEMO_STEPS, seed: int = 0) -> RealNVP:
    """A 2D RealNVP (4 blocks) fitted to two moons by the library's trainer (``flows.training.Trainer``,
    the seed's loss -mean logProbability).

    Deterministic for a given seed; leaves torch's global random state as it was. Runs on one CPU
    thread: the net is tiny, so more threads only add waiting (several times slower on a busy CPU).
    """
    config = replace(DEMO_CONFIG, steps=steps, seed=seed).validate()
    with one_thread(), torch.random.fork_rng(devices=[]):
        trainer = Trainer(config)
        trainer.run()
    model = trainer.model
    assert isinstance(model, RealNVP), "the demo's family is RealNVP"
    return model.eval()


@dataclass
class FlowStage:
    """Where the prior's points (and two circles of the latent space) are after some layers."""

    title: str
    points: np.ndarray  # [DEMO_POINTS, 2]
    circles: list[np.ndarray]  # one [k, 2] polyline per radius in CIRCLE_RADII


def flow_stages(
    model: RealNVP, points: int = DEMO_POINTS, seed: int = 1
) -> tuple[np.ndarray, list[FlowStage]]:
    """The angle of each latent point (for colour) and the stages z, after blocks 1 and 2, and x = F(z)."""
    z = torch.randn(points, 2, generator=torch.Generator().manual_seed(seed))
    angle = torch.linspace(0, 2 * math.pi, 200)
    circles = [r * torch.stack([angle.cos(), angle.sin()], 1) for r in CIRCLE_RADII]
    layers_per_block = 2  # f1 then f0
    shown = {0: "z ~ N(0, I): the prior", 1: "after block 1", 2: "after block 2"}
    shown[DEMO_BLOCKS] = "x = F(z): two moons"
    stages = []
    with torch.no_grad():
        h, rings = z, circles
        for block in range(DEMO_BLOCKS + 1):
            if block in shown:
                stages.append(FlowStage(shown[block], h.numpy(), [c.numpy() for c in rings]))
            if block < DEMO_BLOCKS:
                for layer in model.layers[block * layers_per_block : (block + 1) * layers_per_block]:
                    h, rings = layer(h)[0], [layer(c)[0] for c in rings]
    return torch.atan2(z[:, 1], z[:, 0]).numpy(), stages


def flow_figure(angle: np.ndarray, stages: list[FlowStage]) -> go.Figure:
    """One panel per stage; points coloured by their latent angle so each can be followed."""
    fig = make_subplots(rows=1, cols=len(stages), subplot_titles=[s.title for s in stages])
    for col, stage in enumerate(stages, start=1):
        fig.add_trace(
            go.Scatter(
                x=stage.points[:, 0],
                y=stage.points[:, 1],
                mode="markers",
                marker={"size": 4, "color": angle, "colorscale": "Phase", "opacity": 0.8},
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        for radius, circle in zip(CIRCLE_RADII, stage.circles, strict=True):
            fig.add_trace(
                go.Scatter(
                    x=circle[:, 0],
                    y=circle[:, 1],
                    mode="lines",
                    line={"color": "black", "width": 1.5},
                    name=f"|z| = {radius:g}",
                    showlegend=col == 1,
                    hoverinfo="name",
                ),
                row=1,
                col=col,
            )
        axis = "" if col == 1 else str(col)
        fig.update_layout({f"yaxis{axis}": {"scaleanchor": f"x{axis}", "scaleratio": 1}})
    fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_annotations(font_size=18)
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.05, "x": 0.5, "xanchor": "center", "font": {"size": 14}},
        plot_bgcolor="white",
    )
    return fig


@st.cache_data(show_spinner="Training a small RealNVP on two moons (once, a few seconds)...")
def demo_flow_stages(steps: int = DEMO_STEPS, seed: int = 0) -> tuple[np.ndarray, list[FlowStage]]:
    """Cached :func:`flow_stages` of :func:`fit_moons_flow`."""
    return flow_stages(fit_moons_flow(steps, seed))


# --- MNIST on disk -------------------------------------------------------------------------------------

SPLIT_CHOICES = {
    "train + test (60,000 + 10,000 digits, 11 MB)": "all",
    "test only (10,000 digits, 1.6 MB)": "test",
}


@dataclass
class MnistStatus:
    """Which MNIST files the data folder holds."""

    data_dir: Path
    present: dict[str, Path]  # file name -> path found (decompressed or .gz)
    missing: list[str]  # file names not found

    def has_split(self, split: str) -> bool:
        """True when both files of ``split`` ("train" or "test") are present."""
        return all(f.name in self.present for f in DATASETS["mnist"].files_for(split))

    @property
    def state(self) -> str:
        """ "complete" (all four files), "test only", or "missing"."""
        if not self.missing:
            return "complete"
        return "test only" if self.has_split("test") else "missing"


def mnist_status(data_dir: str | Path | None = None) -> MnistStatus:
    """Looks for the four MNIST IDX files (decompressed or .gz) in ``data_dir``, default the app's folder."""
    folder = Path(data_dir) if data_dir is not None else default_data_dir("mnist")
    present, missing = {}, []
    for file in DATASETS["mnist"].files:
        found = find_file(folder, file.name)
        if found is None:
            missing.append(file.name)
        else:
            present[file.name] = found
    return MnistStatus(folder, present, missing)


def offline_instructions(data_dir: Path) -> str:
    """Markdown: the three ways to get MNIST onto a machine without network access."""
    names = "\n".join(f"   {f.name}.gz" for f in DATASETS["mnist"].files)
    mirror_env = DATASETS["mnist"].mirror_env
    return f"""**No network? Three ways to get MNIST here:**

1. Copy the four files (`.gz` or decompressed) into `{data_dir}`:
   ```
{names}
   ```
2. Or type where a copy lies (a folder, a `file://` URL or your own HTTP mirror) into *Mirror* above and
   press *Download* again. To make it the default, start the dashboard with
   ```
   export {mirror_env}=/media/usb/mnist/
   ```
3. Or run the downloader in a terminal with the same mirror:
   ```
   python scripts/download_mnist.py --mirror /media/usb/mnist/ --data-dir {data_dir}
   ```

Files are checked against the official checksums either way. Until then, the Train page offers the 2D toy
datasets, and the Jacobian and Model pages use random inputs."""


def _progress_text(file_name: str, done: int, total: int | None, index: int, count: int) -> str:
    size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
    return f"File {index + 1} of {count}: {file_name} ({size})"


def render_mnist_status() -> MnistStatus:
    """The data status block: present, or a Download button with a live progress bar and offline help."""
    status = mnist_status()
    test_count, train_count = "10,000 test digits", "60,000 training digits"
    if status.state == "complete":
        st.success(
            f"MNIST is ready in `{status.data_dir}`: {train_count} and {test_count}.",
            icon=":material/check_circle:",
        )
        return status
    if status.state == "test only":
        st.info(
            f"MNIST test split found in `{status.data_dir}` ({test_count}): enough for the Jacobian, Model "
            "and Samples pages and for training on a held-out part of it. Download the training split for "
            "full training.",
            icon=":material/info:",
        )
    else:
        st.warning(
            f"MNIST is not in `{status.data_dir}` yet.", icon=":material/inbox:"
        )  # the server's own path

    left, right = st.columns([3, 2])
    choice = left.radio("What to download", list(SPLIT_CHOICES), key="home_download_split", horizontal=True)
    split = SPLIT_CHOICES[choice]
    allowed = access.can_control()
    mirror = right.text_input(
        "Mirror (optional)",
        key="home_download_mirror",
        placeholder="empty: the official mirrors; or a URL, file:// URL or folder",
        disabled=not allowed,
        help=None if allowed else access.LOCKED_HELP,
    ).strip()
    clicked = st.button(
        "Download MNIST",
        icon=":material/download:",
        type="primary",
        key="home_download",
        disabled=not allowed,
        help=None if allowed else access.LOCKED_HELP,
    )
    if clicked and allowed:  # checked again: a disabled button is no lock
        files = [f.name for f in DATASETS["mnist"].files_for(split)]
        bar = st.progress(0.0, text="Connecting...")
        events = st.empty()
        last_update = [0.0]

        def progress(file_name: str, done: int, total: int | None) -> None:
            index = next((i for i, name in enumerate(files) if file_name.startswith(name)), 0)
            now = time.monotonic()
            if now - last_update[0] < 0.1 and not (total and done >= total):
                return
            last_update[0] = now
            fraction = (index + (done / total if total else 0.0)) / len(files)
            bar.progress(min(fraction, 1.0), text=_progress_text(file_name, done, total, index, len(files)))

        try:
            download_mnist(
                status.data_dir,
                split=split,
                mirrors=[mirror] if mirror else None,
                progress=progress,
                log=events.caption,
            )
        except (DownloadError, OSError, ValueError) as error:
            bar.empty()
            events.empty()
            st.error(f"Download failed: {plain(error)}", icon=":material/error:")
            st.markdown(offline_instructions(status.data_dir))
            return mnist_status()
        bar.progress(1.0, text="Done: every file verified against the official checksum.")
        status = mnist_status()
        st.success(f"MNIST downloaded to `{status.data_dir}` and verified.", icon=":material/check_circle:")
        return status
    with st.expander("No network? Offline instructions"):
        st.markdown(offline_instructions(status.data_dir))
    return status


# --- links to the pages ----------------------------------------------------------------------------------


def render_page_links() -> None:
    """One ``st.page_link`` per page, with a line saying what it is for."""
    links = [spec for spec in PAGES if spec is not DEFAULT_PAGE]
    for column, spec in zip(st.columns(len(links)), links, strict=True):
        with column, st.container(border=True):
            st.page_link(spec.script, label=f"**{spec.title}**", icon=spec.icon)
            st.caption(spec.caption)
