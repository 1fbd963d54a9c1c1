"""Home: what a normalizing flow is, the seed's F = f0 o f1, the MNIST status, and links to every page."""

from __future__ import annotations

import streamlit as st

from dashboard.home.view import (
    DEMO_BLOCKS,
    demo_flow_stages,
    flow_figure,
    render_mnist_status,
    render_page_links,
)
from dashboard.widgets import presenter
from dashboard.widgets.maths import CHANGE_OF_VARIABLES_LATEX, SEED_BIJECTION_LATEX


def render() -> None:
    """Draws the page."""
    st.title(":material/waves: Flow Lab")
    st.markdown(
        "#### A normalizing flow turns a simple random variable $z$, here a standard Gaussian, into data "
        "$x = F(z)$ through a chain of invertible layers. "
        "Because each layer can be undone and its Jacobian determinant is cheap, the flow gives the *exact* "
        "density of any $x$ by the change of variables. "
        "Training maximises that log-density on real data, and sampling is simply $z \\sim$ prior, "
        "$x = F(z)$."
    )
    angle, stages = demo_flow_stages()
    presenter.plotly_chart(flow_figure(angle, stages), key="home_flow_picture")
    st.caption(
        f"Computed live from `flows/`: a RealNVP with {DEMO_BLOCKS} blocks, fitted for a few seconds to two "
        "moons. Each dot is a sample of the prior, coloured by its angle so you can follow it; the black "
        "curve "
        "is the circle |z| = 1, carried along by the same layers."
    )
    left, right = st.columns(2)
    with left:
        st.subheader("The seed's bijection")
        st.latex(SEED_BIJECTION_LATEX)
        st.markdown(
            "$x, y$ are the two halves of the input; the four MLPs are built on the **Model** page. RealNVP "
            "uses $F$ as written, NICE drops $sv$ and $su$. $f_1$ acts first; each coupling changes one half "
            "and keeps the other, so its inverse is closed form and its Jacobian block-triangular: the "
            "**Jacobian** page shows it and checks it."
        )
    with right:
        st.subheader("Exact log-density")
        st.latex(CHANGE_OF_VARIABLES_LATEX)
        st.markdown(
            "This is `logProbability(x)`: map $x$ back to $z = F^{-1}(x)$, add the log-determinants of the "
            "layers, add the prior's log density. The seed's loss is its negative mean over a batch."
        )
    st.subheader("MNIST on this machine")
    render_mnist_status()
    st.subheader("Pages")
    render_page_links()
