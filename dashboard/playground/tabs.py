"""The playground's tabs beside the live panels: layer by layer, NICE vs RealNVP, export."""

from __future__ import annotations

import inspect
import textwrap

import numpy as np
import streamlit as st
import torch

from dashboard.playground import data, figures
from dashboard.playground.controls import Target
from dashboard.playground.export import ExportPanels, panels_png
from dashboard.playground.run import PlaygroundRun, Race, model_names, one_thread
from dashboard.playground.session import start_race
from dashboard.text import plain
from dashboard.widgets import presenter
from flows import Flow, registry
from flows import toy_views as views

#: Points drawn per scatter panel: enough to see the shape, few enough for a busy browser to redraw.
SHOWN_POINTS = 800
RACE_BUDGETS = (250, 500, 1000, 2000, 4000)


def _move_layer(offset: int, last: int) -> None:
    state = st.session_state
    state.pg_layer = min(max(state.get("pg_layer", last) + offset, 0), last)


def layer_view(run: PlaygroundRun, model: Flow) -> None:
    """Layer by layer: the prior's points and grid after each layer, with each layer's log|det|."""
    labels = views.layer_labels(model)
    extent = views.prior_extent(model)
    st.markdown(
        "Slide through the flow one layer at a time. Each dot is a draw from the prior, coloured by "
        "**where it started** (hue = direction, paleness = near the centre), so you can follow it. Cells of "
        "the z-grid are tinted by how much their **area** has changed so far: white = kept, red = stretched, "
        "blue = squeezed."
    )
    last = len(labels) - 1
    if st.session_state.get("pg_layer") not in range(last + 1):  # the model changed under the slider
        st.session_state.pg_layer = last
    controls = st.columns([1, 1, 4, 1.2, 1.2], vertical_alignment="bottom")
    controls[0].button(
        "Back",
        icon=":material/chevron_left:",
        key="pg_layer_back",
        help="Show the previous layer",
        width="stretch",
        on_click=_move_layer,
        args=(-1, last),
        disabled=st.session_state.pg_layer == 0,
    )
    controls[1].button(
        "Next",
        icon=":material/chevron_right:",
        icon_position="right",
        key="pg_layer_next",
        help="Show the next layer",
        width="stretch",
        on_click=_move_layer,
        args=(1, last),
        disabled=st.session_state.pg_layer == last,
    )
    layer = controls[2].select_slider(
        "Layer (0 = the prior's z, last = the data's x)",
        options=list(range(last + 1)),
        format_func=lambda index: labels[index],
        key="pg_layer",
    )
    chosen_x = controls[3].slider("★ z₁", -round(extent, 1), round(extent, 1), 1.0, 0.1, key="pg_star_x")
    chosen_y = controls[4].slider("★ z₂", -round(extent, 1), round(extent, 1), 0.5, 0.1, key="pg_star_y")
    with one_thread():
        frames = views.layer_trace(model, run.latent[:SHOWN_POINTS], torch.tensor([chosen_x, chosen_y]))
    colours = views.start_colours(run.latent[:SHOWN_POINTS])
    frame = frames[layer]
    log_dets = [f.chosen_log_det for f in frames[1:]]
    layer_figure = figures.layer_figure(frame, colours, data.CANVAS)
    bars = figures.log_det_figure(labels[1:], log_dets, layer)
    left, right = st.columns([5, 3])
    with left, st.container(key="pg_panel_layer"):
        presenter.plotly_chart(layer_figure, theme=None, key="pg_fig_layer")
    with right:
        presenter.plotly_chart(bars, theme=None, key="pg_fig_logdet")
    total = sum(log_dets[:layer])
    couplings = [f for f in frames[1:] if "block" in f.label]
    coupling_area = max((float(np.abs(f.cell_log_area).max()) for f in couplings[:layer]), default=0.0)
    family = registry.get_family(run.settings.model)
    if family.volume_preserving:
        scaling = frames[-1].chosen_log_det
        st.info(
            f"**{family.title} keeps areas.** Every additive coupling has log|det| = 0 at every point, so "
            f"after the couplings all cells are still white (largest |log area change| so far: "
            f"{coupling_area:.1e}). "
            f"Only the final scaling changes volume, by the same factor everywhere: Σs = {scaling:+.3f}.",
            icon=":material/straighten:",
        )
    else:
        st.info(
            f"**RealNVP scales.** Each affine coupling multiplies the changed half by exp(s(·)), so cells "
            f"stretch and squeeze. At ★ the layers so far change area by exp({total:+.3f}) = "
            f"×{np.exp(total):.3g}; the density there is the prior's divided by that factor.",
            icon=":material/open_in_full:",
        )
    if layer:
        shown = model.layers[layer - 1]
        method = getattr(type(shown), "_map", None) or type(shown).forward
        with st.expander(f"The code layer {layer} runs ({type(shown).__name__}, from flows/)"):
            st.code(textwrap.dedent(inspect.getsource(method)), language="python")


def race_view(state: st.runtime.state.SessionStateProxy, run: PlaygroundRun, target: Target) -> None:
    """NICE vs RealNVP: the same budget and settings for each, their densities and losses."""
    racers = " and ".join(f"**{title}**" for title in model_names().values())
    st.markdown(
        f"Train {racers} on the same points with the same blocks, hidden sizes, activation, "
        "prior, seed, learning rate and number of steps, then compare their held-out NLL (lower is better)."
    )
    columns = st.columns([2, 1, 3], vertical_alignment="bottom")
    budget = columns[0].select_slider("Step budget", options=RACE_BUDGETS, value=500, key="pg_race_budget")
    if columns[1].button(
        "Race", icon=":material/flag:", type="primary", key="pg_race_start", disabled=state.pg_racing
    ):
        start_race(run, budget)
        st.rerun()  # the whole page, so the fragment refreshes on its own while racing
    race: Race | None = state.pg_race
    if race is None:
        columns[2].caption("Press Race to start; it pauses the main training.")
        return
    columns[2].progress(
        min(race.steps_done / race.budget, 1.0), text=f"{race.steps_done:,} / {race.budget:,} steps each"
    )
    panels = st.columns(len(race.runs))
    histories = {}
    for column, (name, racer) in zip(panels, race.runs.items(), strict=True):
        model, history, _ = racer.snapshot()
        histories[model_names()[name]] = (history.steps, history.losses)
        with one_thread():
            log_density = views.density_grid(model, data.CANVAS, 70)
        nll = race.final_nll.get(name)
        title = model_names()[name]
        heading = f"{title}: held-out NLL {nll:.3f} nats" if nll is not None else f"{title}: training…"
        figure = figures.density_figure(log_density, racer.train_points.numpy(), data.CANVAS, heading)
        with column:
            presenter.plotly_chart(figure, theme=None, key=f"pg_fig_race_{name}")
    presenter.plotly_chart(figures.race_figure(histories, target.entropy), theme=None, key="pg_fig_race_loss")
    if race.error:
        st.error(plain(race.error), icon=":material/warning:")
    if race.finished:
        names = model_names()
        scores = ", ".join(f"{names[name]} {nll:.3f} nats" for name, nll in race.final_nll.items())
        ranked = sorted(race.final_nll, key=race.final_nll.get)
        lead = race.final_nll[ranked[1]] - race.final_nll[ranked[0]] if len(ranked) > 1 else 0.0
        with st.container(key="pg_race_result"):
            st.success(
                f"Held-out NLL after {race.budget:,} steps each: {scores}; "
                f"**{names[ranked[0]]}** is ahead by {lead:.3f} nats.",
                icon=":material/emoji_events:",
            )


def export_view(run: PlaygroundRun, target: Target) -> None:
    """Download buttons: the four panels as a PNG drawn on the server, the metrics as CSV."""
    settings = run.settings

    def png() -> bytes:  # runs when the button is clicked, maybe outside the script thread
        model = run.copy_model()
        with run.lock:
            history = run.history.copy()
        with one_thread():
            panels = ExportPanels(
                extent=data.CANVAS,
                data=run.train_points.numpy(),
                samples=run.samples(model).numpy(),
                log_density=views.density_grid(model, data.CANVAS, 120),
                grid=views.warped_grid(model).numpy(),
                steps=history.steps,
                losses=history.losses,
                gaussian_nll=target.gaussian_nll,
                entropy=target.entropy,
                caption=(
                    f"Flow Lab playground · {target.name} · {model_names()[settings.model]}, "
                    f"{settings.blocks} blocks, hidden {list(settings.hidden)} · step {len(history.steps):,}"
                ),
            )
        return panels_png(panels)

    st.markdown(
        "Download the four live panels as one PNG (drawn on the server, no browser needed), and "
        "every step's loss as CSV."
    )
    columns = st.columns(2)
    columns[0].download_button(
        "Download panels (PNG)",
        data=png,
        file_name="flow-playground.png",
        mime="image/png",
        icon=":material/image:",
        key="pg_export_png",
        on_click="ignore",
    )
    columns[1].download_button(
        "Download metrics (CSV)",
        data=run.metrics_csv,
        file_name="flow-playground.csv",
        mime="text/csv",
        icon=":material/table:",
        key="pg_export_csv",
        on_click="ignore",
    )
