"""A Plotly chart that updates in place: a custom component whose one div Plotly.react redraws.

st.plotly_chart hashes the figure into the element's identity, so every new figure remounts the chart
(a blank frame, the user's zoom lost). This component's identity is its ``key`` alone; a new figure is
sent as a render message and drawn by Plotly.react into the same div, with ``uirevision`` kept.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io
import streamlit.components.v1 as components

from dashboard.widgets import presenter
from flows.infra import atomic_write_bytes

FRONTEND = Path(__file__).resolve().parent / "live_chart_frontend"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
DEFAULT_HEIGHT = 400


def _served_folder() -> Path:
    """A folder holding index.html and the installed plotly package's offline plotly.min.js.

    Streamlit serves a component only from its own folder; plotly.js is copied there (atomically,
    once per plotly version and page) instead of being committed to the repository.
    """
    page = (FRONTEND / "index.html").read_bytes()
    # One folder per plotly version and page: two checkouts served on one machine never share it.
    version = f"{plotly.__version__}-{hashlib.sha256(page).hexdigest()[:12]}"
    folder = Path(tempfile.gettempdir()) / f"flowlab-live-chart-{version}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (("plotly.min.js", PLOTLY_JS), ("index.html", FRONTEND / "index.html")):
        data = source.read_bytes()
        target = folder / name
        if not target.exists() or target.read_bytes() != data:
            atomic_write_bytes(target, data)
    return folder


_component = components.declare_component("flowlab_live_chart", path=str(_served_folder()))


@dataclass(frozen=True)
class ViewportFit:
    """Charts stacked in ``rows`` rows under the element ``anchor`` (a CSS selector), sized to fit the window.

    Each chart gets ``(window height - anchor's top - rows * spacing) / rows`` pixels, the anchor's top
    measured in the page (not the scrolled view), so the rows end at the bottom of one screen.
    """

    anchor: str
    rows: int = 1
    spacing: int = 16  # pixels under each row (Streamlit's gap between elements)

    def __post_init__(self) -> None:
        if not self.anchor or self.rows < 1 or self.spacing < 0:
            raise ValueError(f"ViewportFit needs a CSS selector, rows >= 1 and spacing >= 0, got {self}")


def live_chart(
    figure: go.Figure,
    key: str,
    height: int | None = None,
    fit: ViewportFit | None = None,
    min_height: int = 200,
) -> None:
    """Draws ``figure`` in the live chart ``key``, updating the chart already there in place.

    ``height`` (default: the figure's) is the chart's height in pixels; with ``fit`` it is the most, the
    browser sizing the chart to fit the window (at least ``min_height``). The height changes only when
    the window or the page above the anchor does, never because the figure did.
    """
    if not key:
        raise ValueError("live_chart needs a key: the key is the chart's identity across reruns")
    height = int(height or figure.layout.height or DEFAULT_HEIGHT)
    _component(
        spec=plotly.io.to_json(presenter.style(figure), validate=False),
        height=height,
        fit=None if fit is None else {"anchor": fit.anchor, "rows": fit.rows, "spacing": fit.spacing},
        min_height=int(min(min_height, height)),
        chart_id=key,
        key=key,
        default=None,
    )
