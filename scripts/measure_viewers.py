"""How a shared dashboard stretches to a class: 1, 3 and 5 playgrounds playing at once, and a Train run.

    python scripts/measure_viewers.py [--sessions 1,3,5] [--seconds 30] [--no-train-run]

Starts a fresh dashboard server on 127.0.0.1, opens one Chromium context per viewer (each its own Streamlit
session), starts one small Train run in another context, then presses Play in every playground at once. A
script inside each page records the time of every change of the status row's step counter (100 ms
resolution), so the figures are the browser's view: refreshes per second, the longest wait between two
refreshes (a session "starves" when it waits more than a second) and training steps per minute. Prints a
Markdown table; ``--write`` appends it to bench/VIEWERS.md. Needs Chromium and Playwright (the dev
requirements) and the MNIST test files in ../shared/data/mnist for the Train run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    make_data_dir,
    missing_browser,
    streamlit_server,
)

MNIST = REPO.parent / "shared" / "data" / "mnist"
RESULTS = REPO / "bench" / "VIEWERS.md"
STATUS = ".st-key-pg_status"
#: Records (seconds since start, step) whenever the step counter in ``selector`` (matched by ``pattern``)
#: changes; started with page.evaluate(MONITOR, [selector, pattern]).
MONITOR = """
([selector, pattern]) => {
  window.__changes = []; window.__last = null;
  const start = performance.now(), regex = new RegExp(pattern);
  window.__monitor = setInterval(() => {
    const element = document.querySelector(selector);
    const match = element && element.innerText.match(regex);
    if (!match) return;
    const step = parseInt(match[1].replace(/,/g, ''));
    if (step === window.__last) return;
    window.__last = step;
    window.__changes.push([(performance.now() - start) / 1000, step]);
  }, 100);
}
"""
PLAYGROUND_STEP = [STATUS, r"Step\s+([\d,]+)"]
TRAIN_STEP = ['[data-testid="stMain"]', r"Step ([\d,]+) / "]
#: The run panel's heading, whose badge names the run's state.
TRAIN_STATE = '[data-testid="stMain"] h4'


def summarise(changes: list[list[float]], seconds: float) -> dict[str, float]:
    """Refreshes per second, the longest gap between refreshes (s) and steps per minute, over ``seconds``."""
    times = [t for t, _ in changes]
    if len(changes) < 2:
        return {"refresh_per_s": 0.0, "longest_gap_s": seconds, "steps_per_min": 0.0}
    gaps = [b - a for a, b in itertools.pairwise(times)] + [seconds - times[-1]]
    steps = changes[-1][1] - changes[0][1]
    return {
        "refresh_per_s": (len(changes) - 1) / (times[-1] - times[0]),
        "longest_gap_s": max(max(gaps), times[0]),
        "steps_per_min": steps / (times[-1] - times[0]) * 60,
    }


def start_train_run(browser, url: str):
    """A small MLP RealNVP on MNIST started from the Train page; returns its page."""
    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
    page.goto(f"{url}/train")
    hidden = page.get_by_role("textbox", name="Hidden sizes")
    hidden.wait_for(timeout=120_000)
    hidden.fill("64")
    hidden.press("Enter")
    for label, value in (("Steps", "1000000"), ("Batch size", "64")):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(value)
        field.press("Enter")
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"[?&]run="), timeout=120_000)
    page.get_by_text(re.compile(r"Step [\d,]+ / ")).first.wait_for(timeout=120_000)
    return page


def server_step(runs_dir: Path) -> tuple[float, int] | None:
    """(now, the Train run's step in its status.json), written by the server every few seconds."""
    for status in runs_dir.glob("*/status.json"):
        try:
            return time.monotonic(), int(json.loads(status.read_text()).get("step", 0))
        except (OSError, ValueError):
            return None
    return None


def answer_time(page, button: str, shown: str) -> float:
    """Seconds from a click on ``button`` until the element ``shown`` (a selector) appears, as the
    browser sees it (Playwright's polling adds a few tens of milliseconds)."""
    started = time.monotonic()
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_selector(shown, timeout=120_000)
    return time.monotonic() - started


def measure(
    browser, url: str, sessions: int, seconds: float, train_page, runs_dir: Path
) -> list[dict[str, float]]:
    """Opens ``sessions`` playgrounds, plays them all for ``seconds``; one summary per session (+ the run)."""
    contexts = [browser.new_context(viewport={"width": 1600, "height": 1000}) for _ in range(sessions)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.goto(f"{url}/playground")
        page.wait_for_selector(f"{STATUS} >> text=Step", timeout=180_000)
    for page in pages:
        page.get_by_role("button", name="Play").click()
    for page in pages:  # training, or waiting in line beyond the server's cap
        page.wait_for_selector(
            f"{STATUS}:has-text('training'), {STATUS}:has-text('waiting')", timeout=120_000
        )
    for page in pages:
        page.evaluate(MONITOR, PLAYGROUND_STEP)
    if train_page is not None:
        train_page.evaluate(MONITOR, TRAIN_STEP)
    before = server_step(runs_dir)
    time.sleep(seconds)
    after = server_step(runs_dir)
    results = [summarise(page.evaluate("window.__changes"), seconds) for page in pages]
    for page, result in zip(pages, results, strict=True):
        waiting = page.locator(".st-key-pg_waiting")
        place = re.search(r"(\d+\w\w) in line", waiting.inner_text()) if waiting.count() else None
        result["state"] = f"waiting, {place.group(1)} in line" if place else "playing"
    if train_page is not None:
        results.append(summarise(train_page.evaluate("window.__changes"), seconds))
        train_page.evaluate("clearInterval(window.__monitor)")
        if before and after:  # the run's own steps, from status.json, beside what its page showed
            results[-1]["state"] = (
                f"training, {(after[1] - before[1]) / (after[0] - before[0]) * 60:,.0f} steps/min"
            )
    answers = [answer_time(page, "Pause", f"{STATUS}:has-text('paused')") for page in pages]
    if train_page is not None:
        train_answers = [
            answer_time(train_page, "Pause", f"{TRAIN_STATE}:has-text('paused')"),
            answer_time(train_page, "Resume", f"{TRAIN_STATE}:has-text('running')"),
        ]
        results[-1]["answer_s"] = max(train_answers)
    for result, answer in zip(results, answers, strict=False):
        result["answer_s"] = answer
    for context in contexts:
        context.close()
    return results


def table(rows: list[tuple[int, list[dict[str, float]], bool]]) -> list[str]:
    lines = [
        "| playgrounds open | session | state | refreshes/s | longest wait (s) | steps/min "
        "| Pause answered (s) |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for sessions, results, with_run in rows:
        for index, result in enumerate(results):
            is_run = with_run and index == len(results) - 1
            name = "Train run" if is_run else f"playground {index + 1}"
            answer = result.get("answer_s")
            lines.append(
                f"| {sessions} | {name} | {result.get('state', 'training')} "
                f"| {result['refresh_per_s']:.2f} | {result['longest_gap_s']:.2f} "
                f"| {result['steps_per_min']:,.0f} | {'' if answer is None else f'{answer:.2f}'} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,3,5", help="comma-separated counts of playground sessions")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window per count")
    parser.add_argument("--no-train-run", action="store_true", help="measure the playgrounds alone")
    parser.add_argument("--write", action="store_true", help=f"append the table to {RESULTS.name}")
    parser.add_argument("--note", default="", help="a remark on the machine, written with the table")
    args = parser.parse_args(argv)
    reason = missing_browser()
    if reason:
        parser.error(reason)
    counts = [int(part) for part in args.sessions.split(",") if part.strip()]
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory(prefix="flowlab-viewers-") as scratch:
        data = make_data_dir(MNIST, Path(scratch) / "data")
        runs_dir = Path(scratch) / "runs"
        with streamlit_server(data, runs_dir) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            train_page = None if args.no_train_run else start_train_run(browser, server.url)
            for count in counts:
                print(f"{count} playground session(s) playing for {args.seconds:g} s ...", file=sys.stderr)
                rows.append(
                    (
                        count,
                        measure(browser, server.url, count, args.seconds, train_page, runs_dir),
                        bool(train_page),
                    )
                )
            browser.close()
    started = dt.datetime.now(dt.timezone.utc)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    command = " ".join(sys.argv[1:] if argv is None else argv)
    header = [
        f"## {started:%Y-%m-%d %H:%M} UTC: `python scripts/measure_viewers.py {command}`",
        "",
        f"{cores} cores{f' ({args.note})' if args.note else ''}; one Chromium, a context per session; "
        f"{args.seconds:g} s measured per row, in the browser (100 ms resolution).",
        "",
    ]
    lines = header + table(rows) + [""]
    print("\n".join(lines))
    if args.write:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
