"""Model: the seed's MLP builder with its two GAN-shaped examples, and the coupling layers' real source."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard.model.image_flows import image_flow_section
from dashboard.model.view import (
    PRESETS,
    SOURCES,
    build_mlp,
    forward,
    mlp_input,
    parameter_table,
    parse_activations,
    parse_layer_sizes,
    pixels,
)
from dashboard.services import state
from dashboard.text import plain
from dashboard.widgets import presenter
from dashboard.widgets.source import source_tabs
from flows.nn import ACTIVATIONS

CUSTOM = "Custom"


def apply_preset() -> None:
    """Fills both text fields from the chosen preset."""
    preset = PRESETS.get(st.session_state.get("model_preset") or "")
    if preset is not None:
        st.session_state["model_sizes"] = preset.sizes
        st.session_state["model_activations"] = preset.activations


def mark_custom() -> None:
    """Editing a field by hand leaves the preset."""
    st.session_state["model_preset"] = CUSTOM


def render() -> None:
    """Draws the page."""
    first = next(iter(PRESETS.values()))
    st.session_state.setdefault("model_preset", next(iter(PRESETS)))
    st.session_state.setdefault("model_sizes", first.sizes)
    st.session_state.setdefault("model_activations", first.activations)
    state.torch_ready()
    st.title("Model: the seed's MLP and the coupling layers")
    st.markdown(
        "The seed's multi-layer perceptron takes the **shape of each layer** and the **activation of each "
        "layer**. Every layer computes"
    )
    st.latex(
        r"\mathbf{y} = \text{activation}(\mathbf{x}\,W + b), \qquad \mathbf{x} \in [\text{batch}, \text{in}],"
        r"\quad W \in [\text{in}, \text{out}], \quad b \in [\text{out}]"
    )
    st.pills(
        "The seed's examples (the shapes a GAN uses)",
        [*PRESETS, CUSTOM],
        key="model_preset",
        on_change=apply_preset,
    )
    sizes_column, activations_column = st.columns(2)
    with sizes_column:
        st.text_input(
            "Layer sizes, input first",
            key="model_sizes",
            on_change=mark_custom,
            help="Whole numbers separated by commas, e.g. 784, 50, 1 (784 = 28 × 28 pixels).",
        )
        sizes_error = st.empty()
    with activations_column:
        st.text_input(
            "Activations, one per layer",
            key="model_activations",
            on_change=mark_custom,
            help=f"Names separated by commas: {', '.join(sorted(ACTIVATIONS))}, or none. "
            "One name applies to every layer.",
        )
        activations_error = st.empty()
    mlp = None
    try:
        sizes = parse_layer_sizes(st.session_state["model_sizes"])
    except ValueError as error:
        sizes_error.error(plain(error), icon=":material/warning:")
    else:
        try:
            activations = parse_activations(st.session_state["model_activations"], len(sizes) - 1)
        except ValueError as error:
            activations_error.error(plain(error), icon=":material/warning:")
        else:
            try:
                mlp = build_mlp(sizes, activations)
            except ValueError as error:  # more weights than the memory limit allows
                sizes_error.error(plain(error), icon=":material/warning:")
    if mlp is None:
        st.info("Fix the field marked above to build the network; the forward pass waits for a valid spec.")
    if mlp is not None:
        preset = PRESETS.get(st.session_state.get("model_preset") or "")
        if preset is not None:
            st.markdown(f"*{preset.story}*")
        table = parameter_table(mlp, activations)
        total = int(table["parameters"].iloc[-1])
        table_column, code_column = st.columns([3, 2])
        with table_column:
            st.metric("Parameters", f"{total:,}")
            st.dataframe(table, hide_index=True, key="model_parameters")
        with code_column:
            st.markdown("**The module** (`print(mlp)`)")
            st.code(repr(mlp), language="text")

        st.subheader("A forward pass")
        n_in, n_out = mlp.sizes[0], mlp.sizes[-1]
        images = state.test_images("mnist") if n_in == 784 else None
        value, seed, digit = 0.0, 0, None
        input_column, output_column = st.columns(2)
        with input_column:
            if n_in == 784 and images is not None:
                index = st.number_input("MNIST test digit", 0, len(images) - 1, 0, key="model_digit")
                digit = images[index]
            elif n_in == 1:
                value = st.slider("Input z", -3.0, 3.0, 0.5, 0.1, key="model_value")
            else:
                seed = st.number_input("Seed of the random input", 0, 10_000, 0, key="model_seed")
                if n_in == 784:
                    st.caption(
                        "No MNIST test digits on disk (get them on the **Home** page): using random input."
                    )
            x, described = mlp_input(n_in, digit, value, int(seed))
            st.markdown(f"Input: {described}.")
            if digit is not None:
                st.image(pixels(digit), caption="the input digit")
        y = forward(mlp, x)
        with output_column:
            if n_out == 784:
                st.image(pixels(y[0]), caption="the output as a 28 × 28 image (untrained weights)")
            elif n_out == 1:
                st.metric("Output", f"{float(y[0, 0]):.4f}")
            else:
                figure = go.Figure(go.Bar(y=y[0].numpy()))
                figure.update_layout(
                    height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis_title="output index"
                )
                presenter.plotly_chart(figure, key="model_output")
            st.caption(f"Output shape {list(y.shape)}: [batch, {n_out}].")
    st.subheader("The coupling layers, read from the running code")
    st.markdown(
        "The seed's $f_0$ and $f_1$ are coupling layers: `Coupling` owns the split into halves $x, y$; "
        "NICE's "
        "`AdditiveCoupling` and RealNVP's `AffineCoupling` only say how the changed half moves. Shown with "
        "`inspect.getsource`, so this is always the code that runs."
    )
    source_tabs(SOURCES)
    st.divider()
    image_flow_section()
