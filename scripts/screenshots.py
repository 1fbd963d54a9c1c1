"""Screenshots of every dashboard page for the README (docs/screenshots/<page>.png).

    python scripts/screenshots.py [--out docs/screenshots] [--steps 2000]

Trains a RealNVP and a NICE on MNIST digits in a temporary runs folder first (a few minutes on a CPU,
so the Samples page shows digits), then starts the dashboard on a free port of 127.0.0.1, starts a live
run from the Train page in a real Chromium (/usr/bin/chromium), and photographs each page; the
Playground is shown after playing the spiral for 45 s.
Needs the MNIST test files: $FLOWLAB_DATA_DIR, data/mnist, or ../shared/data/mnist.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dashboard.services.threads import training_threads  # noqa: E402
from flows.data import default_data_dir  # noqa: E402
from flows.training import RunLogger, TrainConfig, Trainer, runs  # noqa: E402
from tests.browser import (  # noqa: E402
    MNIST_TEST_FILES,
    chromium,
    make_data_dir,
    missing_browser,
    screenshot_whole_page,
    streamlit_server,
    wait_for_navigation,
)

VIEWPORT = {"width": 1600, "height": 1000}
WAIT_MS = 120_000


def find_mnist() -> Path:
    """A folder holding MNIST's test files."""
    for folder in (default_data_dir("mnist"), REPO.parent / "shared" / "data" / "mnist"):
        if all((folder / name).is_file() for name in MNIST_TEST_FILES):
            return folder
    raise SystemExit("MNIST test files not found: run python scripts/download_mnist.py first")


def pretrain(runs_dir: Path, data_dir: Path, steps: int) -> None:
    """Two finished runs to show and compare: a RealNVP and a NICE on 9,000 test digits."""
    common = {
        "dataset": "mnist",
        "data_dir": str(data_dir),
        "holdout": 1000,
        "batch_size": 64,
        "num_threads": training_threads(),  # all cores but one: the dashboard's setting
    }
    plans = [
        (
            "realnvp-mnist",
            TrainConfig(model="realnvp", hidden=[256, 256], steps=steps, eval_every=250, **common),
        ),
        (
            "nice-mnist",
            TrainConfig(model="nice", hidden=[256, 256], steps=steps // 2, eval_every=250, **common),
        ),
    ]
    for name, config in plans:
        print(f"training {name} for {config.steps} steps ...", flush=True)
        trainer = Trainer(config)
        trainer.run(RunLogger(runs.create_run(runs_dir, config, name=name), trainer))


def shoot(page, out: Path, name: str) -> None:
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=WAIT_MS)
    page.wait_for_timeout(2000)  # widgets and charts finish drawing after the script run ends
    screenshot_whole_page(page, out / f"{name}.png")
    print(f"wrote {out / name}.png", flush=True)


def open_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    wait_for_navigation(page, title)
    page.wait_for_timeout(1000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=WAIT_MS)


def photograph(url: str, out: Path, live_seconds: float, playground_seconds: float) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url)
        wait_for_navigation(page, "Home")
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=WAIT_MS)
        shoot(page, out, "home")

        # Train: a live run beside the two finished ones, which are ticked for comparison.
        open_page(page, "Train")
        hidden = page.get_by_role("textbox", name="Hidden sizes")
        hidden.fill("128, 128")
        hidden.press("Enter")
        page.wait_for_timeout(1000)
        page.get_by_role("button", name=re.compile("Start training$")).click()
        page.wait_for_url(re.compile(r"[?&]run="), timeout=WAIT_MS)
        table = page.locator('[data-testid="stDataFrame"]').first
        table.wait_for(timeout=WAIT_MS)
        box = table.bounding_box()
        for row in (1, 2):  # the finished runs: the live one is listed first
            page.mouse.click(box["x"] + 18, box["y"] + 35 * (row + 1) + 17)
            page.wait_for_timeout(1500)
        page.wait_for_timeout(live_seconds * 1000)
        shoot(page, out, "train")
        page.get_by_role("button", name=re.compile("Stop$")).click()
        page.locator("h4", has_text="stopped").wait_for(timeout=WAIT_MS)

        # Samples of the finished RealNVP, at a temperature of 0.7.
        open_page(page, "Samples")
        page.goto(f"{url}/samples?run=realnvp-mnist")
        page.get_by_text("Model samples").wait_for(timeout=WAIT_MS)
        thumb = page.locator('[data-testid="stSlider"]').first.get_by_role("slider")
        thumb.focus()
        for _ in range(6):
            thumb.press("ArrowLeft")
        page.wait_for_timeout(3000)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=WAIT_MS)
        shoot(page, out, "samples")

        for title in ("Jacobian", "Model"):
            open_page(page, title)
            page.wait_for_timeout(2000)
            shoot(page, out, title.lower())

        # Playground: a fresh page, the spiral, Play for playground_seconds, then Pause and shoot.
        open_page(page, "Playground")
        page.frame_locator(".st-key-pg_panel_density iframe").locator(".js-plotly-plot").wait_for(
            timeout=WAIT_MS
        )
        page.get_by_role("combobox", name="Target").click()
        page.get_by_role("option", name="Spiral").click()
        page.wait_for_timeout(3000)
        page.get_by_role("button", name="Play").click()
        page.wait_for_timeout(playground_seconds * 1000)
        page.get_by_role("button", name="Pause").click()
        page.locator(".st-key-pg_status", has_text="paused").wait_for(timeout=WAIT_MS)
        page.wait_for_timeout(2000)
        shoot(page, out, "playground")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="folder for the PNGs")
    parser.add_argument("--steps", type=int, default=2000, help="steps of the pretrained RealNVP")
    parser.add_argument("--live-seconds", type=float, default=30.0, help="training shown on the Train page")
    parser.add_argument(
        "--playground-seconds", type=float, default=45.0, help="Play on the spiral before the Playground shot"
    )
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="flowlab-screenshots-") as temp:
        temp_dir = Path(temp)
        data_dir = make_data_dir(find_mnist(), temp_dir / "data" / "mnist")
        runs_dir = temp_dir / "runs"
        pretrain(runs_dir, data_dir, args.steps)
        with streamlit_server(data_dir, runs_dir, temp_dir) as server:
            photograph(server.url, args.out, args.live_seconds, args.playground_seconds)


if __name__ == "__main__":
    main()
