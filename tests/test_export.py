"""Export to safetensors + config.json: the reloaded model gives identical log-densities, with no pickle."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from flows import cli, registry
from flows.data import dequantize
from flows.training import TrainConfig, build_model, export_model, load_export, load_run_model
from flows.training.export import CONFIG_FILE, MODEL_FILE, read_export_config

TOY = {"dataset": "moons", "blocks": 2, "hidden": [8], "toy_points": 256}
IMAGE = {
    "dataset": "mnist",
    "blocks": 1,
    "hidden": [8],
    "levels": 2,
    "steps_per_level": 1,
    "hidden_channels": 8,
}


def _trained_looking(config: TrainConfig) -> torch.nn.Module:
    """A model of ``config`` with every parameter moved off its initial value (zeros would hide a
    load that silently kept the fresh weights: a fresh coupling is the identity)."""
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def _inputs(config: TrainConfig) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    if config.is_image:
        pixels = torch.randint(0, 256, (16, 784), generator=generator, dtype=torch.uint8)
        return dequantize(pixels, generator).reshape(16, *build_model(config).shape)
    return torch.randn(64, 2, generator=generator)


#: Every registered family on each kind of data it suits: a new family is tested without a line here.
CASES = [
    (family.name, data)
    for family in registry.families()
    for kind, data in (("toy", TOY), ("image", IMAGE))
    if family.suits(kind)
]


@pytest.mark.parametrize(("model_name", "data"), CASES, ids=[f"{m}-{d['dataset']}" for m, d in CASES])
def test_export_reloads_with_identical_log_densities(model_name: str, data: dict, tmp_path: Path) -> None:
    config = TrainConfig(model=model_name, **data).validate()
    model = _trained_looking(config)
    export_model(model, config, tmp_path / "export")
    loaded, loaded_config = load_export(tmp_path / "export")
    x = _inputs(config)
    with torch.no_grad():
        expected, got = model.logProbability(x), loaded.logProbability(x)
        fresh = build_model(config).eval().logProbability(x)
    assert loaded_config == config
    assert torch.isfinite(expected).all()
    assert not torch.equal(fresh, expected)  # the weights matter, so equality below means they loaded
    assert torch.equal(got, expected)


def test_loading_an_export_unpickles_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = TrainConfig(**TOY).validate()
    model = _trained_looking(config)
    export_model(model, config, tmp_path)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading an export must not unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    loaded, _ = load_export(tmp_path / MODEL_FILE)
    x = _inputs(config)
    with torch.no_grad():
        assert torch.equal(loaded.logProbability(x), model.logProbability(x))


def test_the_safetensors_file_alone_carries_its_config(tmp_path: Path) -> None:
    config = TrainConfig(model="nice", **TOY).validate()
    export_model(_trained_looking(config), config, tmp_path)
    (tmp_path / CONFIG_FILE).unlink()
    assert read_export_config(tmp_path / MODEL_FILE) == config
    load_export(tmp_path / MODEL_FILE)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    config = TrainConfig(**TOY).validate()
    export_model(_trained_looking(config), config, tmp_path)
    changed = {**json.loads((tmp_path / CONFIG_FILE).read_text()), "blocks": 3}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="does not fit the model its config describes"):
        load_export(tmp_path)


def test_main_export_writes_the_best_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--dataset", "moons", "--toy-points", "256", "--hidden", "8", "--blocks", "1", "--steps", "6"]
    argv += ["--eval-every", "3", "--runs-dir", str(tmp_path), "--run-name", "r", "--no-progress"]
    assert cli.main(argv) == 0
    run = tmp_path / "r"
    assert cli.main(["--export", str(run)]) == 0
    assert f"exported {run} to {run / 'export'}" in capsys.readouterr().out
    best, _ = load_run_model(run, "best")
    loaded, config = load_export(run / "export")
    x = _inputs(config)
    with torch.no_grad():
        assert torch.equal(loaded.logProbability(x), best.logProbability(x))
    assert cli.main(["--export", str(run), "--checkpoint", "last", "--export-to", str(tmp_path / "l")]) == 0
    last, _ = load_run_model(run, "last")
    with torch.no_grad():
        assert torch.equal(load_export(tmp_path / "l")[0].logProbability(x), last.logProbability(x))
    assert cli.main(["--export", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("main.py: error: ")
