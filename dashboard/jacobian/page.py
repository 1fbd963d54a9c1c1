"""Jacobian: each layer's analytic log|det| beside autograd, one coupling's Jacobian, the derivation."""

from __future__ import annotations

import streamlit as st

from dashboard.jacobian.image_view import structure_note
from dashboard.jacobian.view import (
    ANALYTIC,
    AUTOGRAD,
    DIFFERENCE,
    MNIST_DIMS,
    READABLE_DIMS,
    ModelSource,
    PointSpec,
    cached_coupling_jacobian,
    cached_layer_labels,
    cached_leaf_jacobian,
    cached_leaf_names,
    cached_log_det_check,
    format_seconds,
    heatmap,
    leaf_heatmap,
    structure_sentence,
)
from dashboard.services import state
from dashboard.text import plain
from dashboard.widgets import presenter
from dashboard.widgets.maths import read_doc, render_markdown_with_latex
from flows import registry
from flows.training import runs

TOLERANCE = 1e-6


def fresh_choices() -> dict[str, str]:
    """ "Fresh <title>" -> family name, for every registered flow family (read at each run)."""
    return {f"Fresh {family.title}": family.name for family in registry.families()}


DIMS = {MNIST_DIMS: "784 (MNIST-shaped)", 16: "16", 8: "8"}
IMAGE_DIMS = {64: "1x8x8 (n = 64, quick)", MNIST_DIMS: "1x28x28 (MNIST-shaped, n = 784)"}
#: A fresh flow's size widget, by whether the family is image-shaped: (label, choices, key, help).
SIZE_CHOICES = {
    False: (
        "Dimensions n",
        DIMS,
        "jacobian_dims",
        "784: built as the trainer builds MNIST models (checkerboard halves, a logit layer last). "
        "16 and 8: halves are the first and second half of the coordinates.",
    ),
    True: (
        "Image",
        IMAGE_DIMS,
        "jacobian_image_dims",
        "A small image flow (2 scales, 1 step each, 8 channels) with a logit layer last; "
        "1x28x28 is built as the trainer builds MNIST models.",
    ),
}


def render() -> None:
    """Draws the page."""
    FRESH = fresh_choices()  # noqa: N806 (read as a table, like the others)
    st.title("Jacobian: analytic log|det| against autograd")
    st.markdown(
        "Every layer returns its own $\\log\\lvert\\det J\\rvert$ from a formula (a sum of log-scales). "
        "Here each one is recomputed the slow way, from the full Jacobian built by autograd and `slogdet`, "
        "in float64."
    )
    state.torch_ready()
    images = state.test_images("mnist")
    trained = {f"Run {info.label}": info for info in state.runs_and_examples()}  # examples last
    model_column, settings_column, input_column = st.columns([2, 2, 3])
    with model_column:
        choice = st.selectbox("Model", [*FRESH, *trained], key="jacobian_model")
        if all(info.example for info in trained.values()):
            st.caption(
                f"No trained runs in `{state.runs_root()}` yet: start one on the **Train** page (or with "
                "`python main.py`) and it appears here; the shipped examples are at the end of the list. "
                "A fresh model checks the same formulas."
            )
    with settings_column:
        if choice in FRESH:
            image_flow = registry.get_family(FRESH[choice]).image_shaped
            label, sizes, key, help_text = SIZE_CHOICES[image_flow]
            dims = st.selectbox(label, list(sizes), format_func=sizes.get, key=key, help=help_text)
            blocks = (
                2 if image_flow else st.slider("Blocks (F = f0 o f1 each)", 1, 4, 2, key="jacobian_blocks")
            )
            identity = st.toggle(
                "Start as the identity",
                key="jacobian_identity",
                help="As initialised for training: the conditioners' last layers start at zero, so a "
                "fresh flow is the identity and every coupling's log|det| is 0. Off: those layers are "
                "drawn at random (seeded), so there is something to check.",
            )
            source = ModelSource(kind=FRESH[choice], dims=dims, blocks=blocks, identity=identity)
        else:
            info = trained[choice]
            which = st.radio("Checkpoint", info.checkpoints, horizontal=True, key="jacobian_checkpoint")
            checkpoint = runs.checkpoint_path(info.path, which)
            dims = info.config.dims
            image_flow = registry.get_family(info.config.model).image_shaped
            source = ModelSource(
                run_path=str(info.path),
                which=which,
                dims=dims,
                checkpoint_mtime=checkpoint.stat().st_mtime if checkpoint.is_file() else 0.0,
            )
            st.caption(f"{info.config.model} on {info.config.dataset}, step {info.step}, state {info.state}.")
    with input_column:
        sources = (
            ["MNIST test digit", "Random point"]
            if images is not None and dims == MNIST_DIMS
            else ["Random point"]
        )
        picked = st.radio("Input x", sources, horizontal=True, key="jacobian_input")
        if picked == "MNIST test digit":
            digit_column, picture_column = st.columns([3, 1])
            index = digit_column.number_input("Test digit index", 0, len(images) - 1, 0, key="jacobian_digit")
            picture_column.image(images[index].numpy(), width=84, caption=f"#{index}")
            point = PointSpec("digit", index=int(index))
        else:
            seed = st.number_input("Seed of the random point", 0, 10_000, 0, key="jacobian_seed")
            point = PointSpec("random", seed=int(seed))
            if images is None and dims == MNIST_DIMS:
                st.caption(
                    "No MNIST test digits on disk: download them on the **Home** page to check a real digit."
                )
            elif dims == MNIST_DIMS:
                st.caption("Uniform noise in [0, 1)^784: a random image.")
    check_tab, coupling_tab, maths_tab = st.tabs(
        ["Check every layer", "Inside one coupling", "The derivation"]
    )
    with check_tab:
        try:
            check = cached_log_det_check(source, point)
        except (ValueError, OSError, RuntimeError, KeyError) as error:
            st.error(f"Could not check this model: {plain(error)}")
            st.stop()
        st.session_state["jacobian_check"] = check.table
        worst = check.max_abs_error
        if worst <= TOLERANCE:
            st.success(
                f"All {len(check.table)} rows agree: the largest |difference| is {worst:.1e} (tolerance "
                f"{TOLERANCE:g}), at n = {check.dims}.",
                icon=":material/check_circle:",
            )
        else:
            st.error(
                f"Disagreement: the largest |difference| is {worst:.3e} > {TOLERANCE:g}.",
                icon=":material/error:",
            )
        st.dataframe(
            check.table,
            hide_index=True,
            key="jacobian_table",
            column_config={
                "layer": st.column_config.TextColumn("layer (forward order, latent to data)", width="large"),
                ANALYTIC: st.column_config.NumberColumn(ANALYTIC, format="%.9f"),
                AUTOGRAD: st.column_config.NumberColumn(AUTOGRAD, format="%.9f"),
                DIFFERENCE: st.column_config.NumberColumn(DIFFERENCE, format="%.1e"),
            },
        )
        st.caption(
            "Each row is log|det| of that layer's forward map at the point where the flow meets it, starting "
            "from z = F⁻¹(x). The last row is the whole flow: the sum of the analytic values against "
            "slogdet of "
            "the whole flow's Jacobian."
        )
        analytic_column, autograd_column, ratio_column = st.columns(3)
        analytic_column.metric("Analytic (the layers' own sums)", format_seconds(check.analytic_seconds))
        autograd_column.metric(
            "Autograd (n×n Jacobians + slogdet)",
            format_seconds(check.autograd_seconds),
            help="torch.func.jacrev builds each layer's and the whole flow's full Jacobian; "
            "slogdet is O(n³).",
        )
        ratio_column.metric(
            "Autograd / analytic", f"{check.autograd_seconds / max(check.analytic_seconds, 1e-9):,.0f}×"
        )
    with coupling_tab:
        if image_flow:
            image_leaf_section(source, point)
        else:
            coupling_section(source, point, dims)
    with maths_tab:
        render_markdown_with_latex(read_doc("jacobian.md"))
        if image_flow:
            render_markdown_with_latex(read_doc("image_flows.md"))


def image_leaf_section(source: ModelSource, point: PointSpec) -> None:
    """Any one leaf layer of an image flow: its full Jacobian as a picture, beside its log|det| two ways."""
    names = cached_leaf_names(source, point)
    st.subheader("Inside one layer of the image flow")
    index = st.selectbox(
        "Layer (forward order, latent to data)", list(range(len(names))), format_func=names.__getitem__,
        key="jacobian_leaf",
    )  # fmt: skip
    jac = cached_leaf_jacobian(source, point, int(index))
    picture_column, facts_column = st.columns([3, 2])
    with picture_column:
        presenter.plotly_chart(leaf_heatmap(jac), key="jacobian_leaf_map")
    with facts_column:
        st.markdown(structure_note(jac.name))
        st.metric("analytic log|det|", f"{jac.analytic_log_abs_det:.9f}")
        st.metric("slogdet of this Jacobian (float64)", f"{jac.slogdet:.9f}")
        st.metric("entries exactly zero", f"{jac.zero_share:.1%}")
        st.caption(
            f"n = {len(jac.matrix)}: one pixel per entry; red positive, blue negative, white exactly zero, "
            "strength on a log scale from 1e-6 to the largest entry."
        )


def coupling_section(source: ModelSource, point: PointSpec, dims: int) -> None:
    """The seed's couplings: every entry of a small one, then one coupling of the chosen model."""
    st.subheader(f"Every entry, n = {READABLE_DIMS}")
    small = ModelSource(
        kind=source.kind if not source.run_path else "realnvp", dims=READABLE_DIMS, blocks=1, hidden=16
    )
    small_point = PointSpec("random", seed=point.seed)
    st.markdown(
        f"A {small.label} with one block, at a random point. Halves: $x$ = the first "
        f"{READABLE_DIMS // 2} coordinates, $y$ = the last {READABLE_DIMS // 2}. Rows are outputs, "
        f"columns "
        "inputs; cells print $\\partial\\,\\text{output}/\\partial\\,\\text{input}$."
    )
    f1_column, f0_column = st.columns(2)
    for column, layer_index in ((f1_column, 0), (f0_column, 1)):
        jac = cached_coupling_jacobian(small, small_point, layer_index)
        with column:
            st.markdown(f"**{jac.label}**")
            presenter.plotly_chart(heatmap(jac), key=f"jacobian_small_{layer_index}")
            st.markdown(structure_sentence(jac))

    st.subheader(f"One coupling of the model above (n = {dims})")
    labels = cached_layer_labels(source)
    layer_index = st.selectbox("Coupling", list(labels), format_func=labels.get, key="jacobian_layer")
    jac = cached_coupling_jacobian(source, point, layer_index)
    picture_column, facts_column = st.columns([3, 2])
    with picture_column:
        presenter.plotly_chart(heatmap(jac), key="jacobian_big")
    with facts_column:
        st.markdown(structure_sentence(jac))
        if jac.split != "half":
            st.info(
                f"Rows and columns are reordered into $(x, y)$ order: first the {jac.half} coordinates "
                f"of the half $x$ of the **{jac.split}** split, then the {jac.half} of $y$. In the "
                f"original "
                "order the blocks interleave; the reordering is $PJP^\\top$ and changes no determinant.",
                icon=":material/swap_horiz:",
            )
        if len(jac.matrix) > 32:
            st.caption(
                "One pixel per entry: red positive, blue negative, white exactly zero; colour strength "
                "on a "
                "log scale from 1e-6 to the largest entry. Zoom in with the mouse to see single entries."
            )
        st.dataframe(jac.facts(), hide_index=True, key="jacobian_facts")
        st.caption(
            "The determinant only reads the diagonal of the changed half: the product of the diagonal is "
            "exp(Σ s), the layer's analytic log|det|."
        )
