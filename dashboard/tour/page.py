"""Guided tour: one real digit followed through a whole flow, step by step, and a sample's way back."""

from __future__ import annotations

import math

import streamlit as st

from dashboard.services import state
from dashboard.tour.view import Tour, follow, model_choices, picture, tour_model
from flows.bijection import Logit
from flows.data.pixels import PIXEL_LEVELS

STEP_KEY = "tour_step"


@st.cache_resource(show_spinner="Following the digit through the flow ...", max_entries=4)
def _tour(run_path: str | None, index: int, seed: int) -> Tour:
    images, labels = state.test_images("mnist"), state.test_labels("mnist")
    model, conditional = tour_model(run_path)
    return follow(model, conditional, images[index], int(labels[index]), seed)


def _move(delta: int, last: int) -> None:
    st.session_state[STEP_KEY] = min(max(st.session_state.get(STEP_KEY, 0) + delta, 0), last)


def _titles(tour: Tour) -> list[str]:
    return [
        "1. The pixels",
        "2. Dequantization",
        *(f"{3 + i}. Layer {step.name}" for i, step in enumerate(tour.steps)),
        f"{3 + len(tour.steps)}. The latent z and the sum",
        f"{4 + len(tour.steps)}. The way back: z -> x for a sample",
    ]


def render() -> None:
    """Draws the page."""
    st.title("Guided tour: one digit through a flow")
    state.torch_ready()
    if state.test_images("mnist") is None:
        st.warning("No MNIST digits here yet: download them on the **Home** page, then come back.")
        return
    choices = model_choices()
    left, right = st.columns([3, 2])
    with left:
        choice = st.selectbox("Model", list(choices), key="tour_model")
    with right:
        index = int(st.number_input("Digit (index in MNIST's test split)", 0, 9999, 0, key="tour_digit"))
    tour = _tour(choices[choice], index, seed=index)
    titles = _titles(tour)
    last = len(titles) - 1
    st.session_state[STEP_KEY] = min(st.session_state.get(STEP_KEY, 0), last)
    back, slider, forward = st.columns([1, 6, 1])
    back.button("< Back", key="tour_back", on_click=_move, args=(-1, last), width="stretch")
    forward.button("Next >", key="tour_next", on_click=_move, args=(1, last), width="stretch", type="primary")
    with slider:
        step = st.slider("Step", 0, last, key=STEP_KEY, format="%d", label_visibility="collapsed")
    st.header(titles[step])
    st.caption(f"Step {step + 1} of {len(titles)}")
    _draw(tour, step)
    _check(tour)


def _draw(tour: Tour, step: int) -> None:
    n = tour.x[0].numel()
    if step == 0:
        st.image(
            picture(tour.pixels.double()), caption=f"MNIST test digit, a {tour.label}: 784 integers 0..255"
        )
        st.markdown("A flow models densities of real numbers, so the integers must first become continuous.")
    elif step == 1:
        st.latex(r"x = \frac{k + u}{256},\qquad u \sim U[0, 1)")
        st.image(picture(tour.x), caption="x in [0, 1)^784: each pixel spread over its own bin")
        st.markdown(
            "A density on $[0,1)^{784}$ bounds the discrete likelihood; bits/dim count in 8-bit pixel space."
        )
    elif step < 2 + len(tour.steps):
        _layer(tour, step - 2)
    elif step == 2 + len(tour.steps):
        _latent(tour, n)
    else:
        pictures = [picture(out) for _, out in tour.back]
        st.latex(r"x = F(z) = f_1 \circ \dots \circ f_K(z),\qquad z \sim \mathcal{N}(0, I)")
        st.markdown(
            "A sample: z drawn from the prior, then each layer's forward map, last one first shown left."
        )
        st.image(pictures, width=180, caption=[name for name, _ in tour.back])


def _layer(tour: Tour, index: int) -> None:
    step = tour.steps[index]
    running = sum(float(s.log_abs_det[0]) for s in tour.steps[: index + 1])
    if isinstance(step.layer, Logit):
        st.latex(r"h = \operatorname{logit}(a + (1 - 2a)\,x)")
    elif step.parts:
        st.latex(
            r"a \leftarrow (a - t(b)) \odot e^{-s(b)},\qquad \log\lvert\det\rvert = -\textstyle\sum_i s_i(b)"
        )
    cols = st.columns(2)
    cols[0].image(picture(step.input), caption="in", width="stretch")
    cols[1].image(picture(step.output), caption="out", width="stretch")
    if step.parts:
        p = step.parts
        names = {
            "changed": "a: the half that changes",
            "conditioning": "b: the half that conditions",
            "log_scale": "s(b): log-scale",
            "shift": "t(b): shift",
        }
        parts = st.columns(4)
        for column, key in zip(parts, names, strict=True):
            column.image(picture(p[key]), caption=names[key], width="stretch")
    st.metric(
        "log|det| of this step (nats)",
        f"{float(step.log_abs_det[0]):.4f}",
        help="of the inverse, data -> latent",
    )
    st.metric("running sum of log|det| (nats)", f"{running:.4f}")


def _latent(tour: Tour, n: int) -> None:
    c = tour.check
    log_dets, prior, total = float(c.log_dets[0]), float(c.prior[0]), float(c.total[0])
    st.image(picture(tour.steps[-1].output), caption="z, the latent: the prior's shape")
    st.latex(r"\log p(x) = \log p_Z(z) + \sum_k \log\lvert\det J_k\rvert")
    st.latex(rf"{total:.4f} = {prior:.4f} + ({log_dets:.4f})\ \text{{nats}}")
    st.latex(
        rf"\text{{bits/dim}} = \log_2 {PIXEL_LEVELS} - \frac{{\log p(x)}}{{{n} \ln 2}}"
        rf" = {tour.bits_per_dim:.4f}"
    )
    st.caption(f"{math.log2(PIXEL_LEVELS):.0f} - {total:.4f} / ({n} ln 2)")


def _check(tour: Tour) -> None:
    c = tour.check
    st.code(
        f"sum of log|det| + log p_Z(z) = {float(c.total[0]):.12f}\n"
        f"model.logProbability(x)      = {float(c.log_probability[0]):.12f}\n"
        f"difference = {float(c.difference[0]):.3e} (float64)",
        language=None,
    )
