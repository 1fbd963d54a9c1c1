"""Temperature on the Samples page: a note for every family, and what each note claims, measured on the
shipped examples (flows.sampling.temperature_effect)."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard.samples.temperature import TOY_TEMPERATURE_NOTE, temperature_note
from flows import registry, sampling
from flows.image.models import grid_labels
from flows.training import TrainConfig, runs
from flows.training.examples import list_examples

from .browser import REPO

#: Samples per measurement: enough that the shares and the mean bits/dim are stable to a few percent.
COUNT = 200


def test_every_family_has_a_temperature_note_for_the_data_it_suits() -> None:
    for family in registry.families():
        if family.suits("image"):
            note = temperature_note(TrainConfig(model=family.name, dataset="mnist"))
            assert "T < 1" in note and family.title in note, f"no temperature note for {family.name}"
            kind = "multi-scale image flow" if family.image_shaped else "flattened pixels"
            assert kind in note, f"{family.name}'s note does not say what kind of flow it is"
        if family.suits("toy"):
            assert temperature_note(TrainConfig(model=family.name, dataset="moons")) == TOY_TEMPERATURE_NOTE


def effects(info: runs.RunInfo, temperatures: tuple[float, ...]) -> dict[float, sampling.TemperatureEffect]:
    model, _ = runs.load_run_model(info.path, runs.EXPORT)
    labels = grid_labels(model, COUNT) if sampling.is_conditional(model) else None
    return {t: sampling.temperature_effect(model, t, COUNT, seed=0, labels=labels) for t in temperatures}


@pytest.fixture(scope="module")
def examples() -> dict[str, runs.RunInfo]:
    torch.set_num_threads(1)
    return {info.run_id: info for info in list_examples()}


@pytest.mark.parametrize("name", ["example-conv-realnvp", "example-glow", "example-glow-conditional"])
def test_a_lower_temperature_gives_an_image_flow_darker_samples_it_finds_more_likely(examples, name) -> None:
    measured = effects(examples[name], (1.0, 0.7))
    warm, cool = measured[1.0], measured[0.7]
    assert cool.bits_per_dim < warm.bits_per_dim - 0.2, (warm, cool)
    assert cool.dark_share > warm.dark_share and cool.grey_share <= warm.grey_share, (warm, cool)


@pytest.mark.parametrize("name", ["example-realnvp", "example-nice"])
def test_a_lower_temperature_only_dims_an_mlp_flows_samples(examples, name) -> None:
    measured = effects(examples[name], (1.0, 0.5))
    warm, cool = measured[1.0], measured[0.5]
    assert cool.grey_share > warm.grey_share + 0.1 and cool.dark_share < warm.dark_share, (warm, cool)
    # level or worse: no real gain, where the multi-scale flows gain more than 0.2 bits/dim at T = 0.7
    assert cool.bits_per_dim > warm.bits_per_dim - 0.05, (warm, cool)


def test_the_samples_page_shows_the_measured_effect_of_temperature(examples, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FLOWLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FLOWLAB_DATA_DIR", str(tmp_path / "no-data"))
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    app.query_params["run"] = "example-glow"
    app.switch_page("pages/samples.py")
    app.run()
    assert not app.exception
    captions = [caption.value for caption in app.caption]
    assert temperature_note(TrainConfig(model="glow", dataset="mnist")) in captions
    assert any(c.startswith("Measured on 100 samples") and "T = 1:" in c for c in captions)
    next(s for s in app.slider if s.key == "samples_temperature").set_value(0.7).run()
    assert not app.exception
    assert any("T = 1:" in c.value and "T = 0.7:" in c.value for c in app.caption)
