"""The playground's training run, what its panels compute, the race and the PNG/CSV exports."""

from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dashboard.playground.data import toy_points
from dashboard.playground.export import ExportPanels, panels_png
from dashboard.playground.figures import block_means, smooth
from dashboard.playground.run import FlowSettings, PlaygroundRun, Race
from dashboard.services.loop import BackgroundLoop
from dashboard.services.threads import one_thread
from flows import toy_views as views

from .polling import wait_until

SMALL = FlowSettings(hidden=(16, 16), blocks=2, batch_size=64)


def _moons(n: int, seed: int) -> torch.Tensor:
    return toy_points("Two moons", n, 0.1, seed)


def _gaussian_fit_nll(train: torch.Tensor, test: torch.Tensor) -> float:
    """Held-out NLL of the maximum-likelihood Gaussian of the training points (torch.distributions)."""
    train = train.double()
    mean = train.mean(0)
    covariance = (train - mean).T @ (train - mean) / len(train)
    return float(-torch.distributions.MultivariateNormal(mean, covariance).log_prob(test.double()).mean())


def test_the_pages_default_model_beats_a_gaussian_fit_on_two_moons() -> None:
    train, test = _moons(2000, 0), _moons(1000, 1)
    run = PlaygroundRun(FlowSettings(), train, test)  # the page's defaults: RealNVP, 8 sin blocks, [64]
    gaussian = _gaussian_fit_nll(train, test)
    start = run.evaluate()
    run.train_for(math.inf, max_steps=150)
    assert run.steps_done == 150 and run.trainer.step == 150
    final = run.evaluate()
    print(f"held-out NLL: start {start:.3f}, after 150 steps {final:.3f}, Gaussian fit {gaussian:.3f}")
    assert final < gaussian - 0.5  # the two moons are far from Gaussian: a real margin, not a tie
    assert run.history.eval_steps == [0, 150]


def test_the_pages_default_model_learns_the_spiral_far_beyond_a_gaussian_fit() -> None:
    """The issue's test case: the spiral, with the page's sample size and noise, in about 2,000 steps.

    2,000 steps is what Chromium on a 2-core machine shows after about 45 s of Play. Measured (4 seeds):
    3.04-3.17 nats held-out for the default, against 3.94 for a Gaussian fit and about 2.60 for the
    target's entropy; the default before the sin nets reached 3.23-3.41 in the same steps.
    """
    train, test = toy_points("Spiral", 2000, 0.1, 0), toy_points("Spiral", 1000, 0.1, 1)
    run = PlaygroundRun(FlowSettings(), train, test)
    gaussian = _gaussian_fit_nll(train, test)
    run.train_for(math.inf, max_steps=2000)
    final = run.evaluate()
    print(f"spiral held-out NLL after 2,000 steps: {final:.3f} nats; Gaussian fit {gaussian:.3f}")
    assert final < gaussian - 0.6


def test_step_records_the_trainers_loss_and_lr_changes_apply() -> None:
    run = PlaygroundRun(SMALL, _moons(300, 0), _moons(200, 1))
    loss = run.step()
    assert run.steps_done == 1 and run.history.losses == [loss] and math.isfinite(loss)
    run.set_lr(1e-4)
    record = run.trainer.train_step()
    assert record.lr == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="positive"):
        run.set_lr(0.0)
    csv = run.metrics_csv().splitlines()
    assert csv[0] == "step,train_loss_nats,training_seconds,heldout_nll_nats" and len(csv) == 2
    with pytest.raises(ValueError, match="shape"):
        PlaygroundRun(SMALL, torch.zeros(10, 3), torch.zeros(10, 3))


def test_play_trains_in_the_background_and_pause_stops_it() -> None:
    run = PlaygroundRun(SMALL, _moons(300, 0), _moons(200, 1))
    run.play()
    assert run.running
    wait_until(lambda: run.steps_done >= 20)
    model, history, step = run.snapshot()  # a consistent copy while the thread trains
    assert len(history.steps) == len(history.losses) == step >= 20
    assert model is not run.model
    run.pause()
    assert not run.running
    stopped = run.steps_done
    time.sleep(0.2)
    assert run.steps_done == stopped == run.trainer.step


def test_background_loop_stops_without_heartbeat_and_reports_errors() -> None:
    calls = []
    loop = BackgroundLoop(
        lambda: calls.append(1) or time.sleep(0.01) or True, name="test", heartbeat_timeout=0.2
    )
    loop.start()
    wait_until(lambda: not loop.running, timeout_s=10)  # nobody touched it: it stopped by itself
    assert calls and loop.error is None

    def broken() -> bool:
        raise RuntimeError("boom")

    failing = BackgroundLoop(broken, name="test-error")
    failing.start()
    wait_until(lambda: not failing.running, timeout_s=10)
    assert failing.error == "training stopped: RuntimeError: boom"


def test_a_diverging_run_stops_with_a_message() -> None:
    run = PlaygroundRun(SMALL, _moons(300, 0), _moons(200, 1))
    run.trainer.batch_hook = lambda step, batch: batch * float("nan")
    run.train_for(math.inf, max_steps=50)
    assert run.diverged and "Lower the learning rate" in run.diverged
    assert run.steps_done == 0  # no rejected step enters the history


@pytest.mark.parametrize("model", ["nice", "realnvp"])
def test_layer_trace_ends_at_F_and_its_log_dets_add_up(model: str) -> None:
    run = PlaygroundRun(
        FlowSettings(model=model, hidden=(16,), blocks=2, batch_size=64), _moons(300, 0), _moons(200, 1)
    )
    run.train_for(math.inf, max_steps=30)  # move away from the identity start
    flow = run.model.double()
    latent = run.latent[:50].double()
    chosen = torch.tensor([0.7, -0.4], dtype=torch.float64)
    frames = views.layer_trace(flow, latent, chosen, cells=4, subdivisions=2)
    assert len(frames) == len(flow.layers) + 1
    assert np.allclose(frames[0].points, latent.numpy())
    x, log_det = flow.forward(torch.cat([latent, chosen[None]]))
    assert np.allclose(frames[-1].points, x[:-1].detach().numpy(), atol=1e-10)
    assert np.allclose(frames[-1].chosen, x[-1].detach().numpy(), atol=1e-10)
    assert sum(f.chosen_log_det for f in frames) == pytest.approx(float(log_det[-1].detach()), abs=1e-10)
    couplings = [f for f in frames[1:] if "block" in f.label]
    assert len(couplings) == 4
    spread = max(float(np.abs(f.cell_log_area).max()) for f in couplings)
    if model == "nice":
        assert spread == 0.0  # additive couplings keep every cell's area exactly
        assert frames[-1].label.endswith("x = exp(s)·z")
    else:
        assert spread > 1e-3  # affine couplings stretch and squeeze


def test_warped_grid_is_the_prior_grid_pushed_through_F() -> None:
    run = PlaygroundRun(SMALL, _moons(300, 0), _moons(200, 1))
    run.train_for(math.inf, max_steps=20)
    grid = views.warped_grid(run.model, lines=5, points_per_line=7)
    extent = views.prior_extent(run.model)
    assert extent == pytest.approx(2.5758, abs=1e-3)  # the Gaussian's 0.5% and 99.5% quantiles
    corner = torch.tensor([[-extent, -extent]])
    assert torch.allclose(grid[0, 0, 0], run.model.forward(corner)[0][0], atol=1e-5)
    assert torch.allclose(grid[1, 0, 0], run.model.forward(corner)[0][0], atol=1e-5)


def test_density_grid_is_the_models_density_and_integrates_to_one() -> None:
    run = PlaygroundRun(SMALL, _moons(500, 0), _moons(200, 1))
    run.train_for(math.inf, max_steps=100)
    extent, resolution = 6.0, 200
    log_density = views.density_grid(run.model, extent, resolution)
    axis = np.linspace(-extent, extent, resolution)
    i, j = 57, 123  # row i is y = axis[i], column j is x = axis[j]
    direct = run.model.logProbability(torch.tensor([[axis[j], axis[i]]], dtype=torch.float32))
    assert log_density[i, j] == pytest.approx(float(direct.detach()), abs=1e-4)
    cell = (axis[1] - axis[0]) ** 2
    assert float(np.exp(log_density).sum() * cell) == pytest.approx(1.0, abs=0.03)


def test_race_trains_both_models_for_the_same_budget() -> None:
    race = Race(SMALL, _moons(300, 0), _moons(200, 1), budget=12)
    race.start()
    wait_until(lambda: race.finished)
    assert not race.running
    assert {name: run.steps_done for name, run in race.runs.items()} == {"nice": 12, "realnvp": 12}
    assert set(race.final_nll) == {"nice", "realnvp"}
    nice, realnvp = race.runs["nice"].model, race.runs["realnvp"].model
    assert type(nice).__name__ == "NICE" and type(realnvp).__name__ == "RealNVP"
    for name, run in race.runs.items():
        assert race.final_nll[name] == pytest.approx(run.evaluate())


def test_png_export_draws_the_four_panels() -> None:
    run = PlaygroundRun(SMALL, _moons(300, 0), _moons(200, 1))
    run.train_for(math.inf, max_steps=5)
    panels = ExportPanels(
        extent=4.5,
        data=run.train_points.numpy(),
        samples=run.samples().numpy(),
        log_density=views.density_grid(run.model, 4.5, 40),
        grid=views.warped_grid(run.model).numpy(),
        steps=run.history.steps,
        losses=run.history.losses,
        gaussian_nll=3.2,
        entropy=1.7,
        caption="test",
    )
    image = Image.open(io.BytesIO(panels_png(panels)))
    assert image.format == "PNG" and image.size[0] > 1000 and image.size[1] > 1000
    red, green, blue = np.asarray(image.convert("RGB")).astype(int).transpose(2, 0, 1)
    orange = ((red > 200) & (green > 110) & (green < 190) & (blue < 140)).sum()
    bluish = ((blue > 150) & (red < 120)).sum()
    assert orange > 400 and bluish > 1000  # the data dots; the samples, density and loss curve


def test_loss_curve_helpers_average_blocks_and_smooth_without_bias() -> None:
    values = np.arange(10.0)
    assert block_means(values, 3).tolist() == [1.5, 5.5, 8.5]  # blocks of 4, 4 and the last 2
    assert block_means(values, 20).tolist() == values.tolist()
    assert np.allclose(smooth([2.0] * 50), 2.0)  # bias-corrected: no pull towards 0 at the start
    noisy = 1.0 + np.random.default_rng(0).normal(0, 0.5, 3000)
    assert np.std(smooth(noisy)[-1000:]) < 0.2 * np.std(noisy)


def test_one_thread_restores_torchs_thread_count_even_when_blocks_overlap() -> None:
    before = torch.get_num_threads()
    run = PlaygroundRun(SMALL, _moons(300, 0), _moons(200, 1))
    run.play()  # the background loop holds its own one_thread() block meanwhile
    with one_thread():
        assert torch.get_num_threads() == 1
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    run.pause()
    assert torch.get_num_threads() == before


def test_a_snapshot_is_a_private_copy_of_the_current_weights() -> None:
    run = PlaygroundRun(FlowSettings(blocks=2, hidden=(16,)), _moons(400, 0), _moons(200, 1))
    for _ in range(3):
        with one_thread():
            run.step()
        model, history, step = run.snapshot()
        trained = run.model.state_dict()
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, trained[name]), name
            assert tensor.data_ptr() != trained[name].data_ptr(), f"{name} is shared, not copied"
        assert step == len(history.steps) == run.steps_done
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # the page's copy changing leaves training alone
    assert not torch.equal(next(model.parameters()), next(run.model.parameters()))
