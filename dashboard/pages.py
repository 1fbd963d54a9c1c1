"""The one list of the dashboard's pages: ``streamlit_app.py`` routes with it, the Home page links to it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    """One page: its thin script in ``pages/``, navigation title, icon, URL and what it is for."""

    script: str
    title: str
    icon: str
    url_path: str
    caption: str


PAGES = (
    PageSpec("pages/home.py", "Home", ":material/home:", "home", "What a flow is; the seed's F = f0 o f1."),
    PageSpec(
        "pages/train.py",
        "Train",
        ":material/model_training:",
        "train",
        "Train NICE or RealNVP live on MNIST or a 2D toy; watch the loss.",
    ),
    PageSpec(
        "pages/samples.py",
        "Samples",
        ":material/grid_view:",
        "samples",
        "Sample digits from a run, interpolate in latent space.",
    ),
    PageSpec(
        "pages/jacobian.py",
        "Jacobian",
        ":material/functions:",
        "jacobian",
        "Check every layer's log|det| against autograd, see J.",
    ),
    PageSpec(
        "pages/model.py",
        "Model",
        ":material/account_tree:",
        "model",
        "Build the seed's MLPs; read the real coupling-layer source.",
    ),
    PageSpec(
        "pages/playground.py",
        "Playground",
        ":material/scatter_plot:",
        "playground",
        "Play with 2D flows in the browser.",
    ),
    PageSpec(
        "pages/tour.py",
        "Guided tour",
        ":material/route:",
        "tour",
        "Follow one real digit through a flow, layer by layer, to its bits/dim.",
    ),
)
#: The page served at ``/``.
DEFAULT_PAGE = PAGES[0]
