"""pip install of the clone: a wheel of the library alone, importable anywhere, whose flowlab-train trains.

The wheel is built offline (``--no-build-isolation``: setuptools from requirements-dev.txt) and installed
with ``--no-index`` into a fresh venv that sees this interpreter's packages through a ``.pth`` file: its
declared dependencies must then be satisfied by the torch already here, and no torch is ever downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Top-level entries of the clone not copied into the build folder (local state, never in a fresh clone).
LOCAL_STATE = {".git", "runs", "data", "build", "dist", ".pytest_cache", ".ruff_cache"}


def _skip_local_state(folder: str, names: list[str]) -> set[str]:
    skipped = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    if Path(folder) == REPO:
        skipped |= {n for n in names if n in LOCAL_STATE or n.startswith(".venv")}  # .venv-ci: gigabytes
    if Path(folder) == REPO / "bench":
        skipped |= {"out"} & set(names)
    return skipped


def _environment() -> dict[str, str]:
    """This process's environment without what would let the repository leak into the fresh venv."""
    drop = {"PYTHONPATH", "FLOWLAB_RUNS_DIR", "FLOWLAB_DATA_DIR", "VIRTUAL_ENV"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel .`` builds from a copy of this clone (so the build leaves the clone as it is)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "clone"
    shutil.copytree(REPO, source, ignore=_skip_local_state)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*command, "-q", "-w", str(work / "dist"), str(source)], check=True, timeout=300)
    (built,) = (work / "dist").glob("flowlab-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """A fresh venv with the wheel installed (dependencies from this interpreter's site-packages)."""
    env = wheel.parent.parent / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True, env=_environment(),
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "_flowlab_test_parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-index", "--no-cache-dir", "-q", str(wheel)],
        check=True, timeout=300, env=_environment(),
    )  # fmt: skip
    return env


def test_wheel_holds_the_library_and_declares_an_unpinned_torch(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"flows", "flowlab-0.1.0.dist-info"}  # not pages/, dashboard/, bench/, tests/, main.py
    for module in (
        "flows/__init__.py",
        "flows/cli/command.py",
        "flows/training/trainer.py",
        "flows/data/mnist.py",
    ):
        assert module in names
    assert "flows/image/__init__.py" in names  # subpackages too
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist")
    ]
    torch_requirement = next(r for r in requires if r.startswith("torch"))
    assert ">=" in torch_requirement and "==" not in torch_requirement and "cu" not in torch_requirement
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    assert "flowlab-train = flows.cli:entry_point" in entry_points.decode()


def test_installed_flows_imports_from_another_folder(installed: Path, tmp_path: Path) -> None:
    code = (
        "import flows, json; print(json.dumps([flows.__file__, flows.__version__, flows.RealNVP.__name__]))"
    )
    result = subprocess.run(
        [installed / "bin" / "python", "-c", code],
        cwd=tmp_path, capture_output=True, text=True, check=True, env=_environment(),
    )  # fmt: skip
    where, version, name = json.loads(result.stdout)
    assert Path(where).is_relative_to(installed), f"imported {where}, not the installed copy"
    assert (version, name) == ("0.1.0", "RealNVP")


def test_flowlab_train_trains_into_runs_of_the_current_folder(installed: Path, tmp_path: Path) -> None:
    argv = ["--dataset", "moons", "--toy-points", "256", "--hidden", "16", "--blocks", "1", "--steps", "6"]
    argv += ["--eval-every", "3", "--log-every", "2", "--no-progress", "--run-name", "installed"]
    result = subprocess.run(
        [installed / "bin" / "flowlab-train", *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_environment(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "installed"  # an installed Flow Lab keeps runs in the current folder
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 3, 4, 6, 6]  # step lines every 2 steps, evaluations at 3 and 6
    assert (run / "checkpoints" / "last.pt").is_file()
    bad = subprocess.run(
        [installed / "bin" / "flowlab-train", "--lr", "-1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_environment(),
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("flowlab-train: error: lr (learning rate) must be a positive number")
