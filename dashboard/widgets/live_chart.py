"""A Plotly chart that updates in place: a custom component whose one div Plotly.react redraws.

st.plotly_chart hashes the figure into the element's identity, so every new figure remounts the chart
(a blank frame, the user's zoom lost). This component's identity is its ``key`` alone; a new figure is
sent as a render message and drawn by Plotly.react into the same div, with ``uirevision`` kept.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io
import streamlit.components.v1 as components

from flows.infra import atomic_write_bytes

FRONTEND = Path(__file__).resolve().parent / "live_chart_frontend"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
DEFAULT_HEIGHT = 400


def _served_folder() -> Path:
    """A folder holding index.html and the installed plotly package's offline plotly.min.js.

    Streamlit serves a component only from its own folder; plotly.js is copied there (atomically,
    once per plotly version) instead of being committed to the repository.
    """
    folder = Path(tempfile.gettempdir()) / f"flowlab-live-chart-{plotly.__version__}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (("plotly.min.js", PLOTLY_JS), ("index.html", FRONTEND / "index.html")):
        data = source.read_bytes()
        target = folder / name
        if not target.exists() or target.read_bytes() != data:
            atomic_write_bytes(target, data)
    return folder


_component = components.declare_component("flowlab_live_chart", path=str(_served_folder()))


def live_chart(figure: go.Figure, key: str, height: int | None = None) -> None:
    """Draws ``figure`` in the live chart ``key``, updating the chart already there in place."""
    if not key:
        raise ValueError("live_chart needs a key: the key is the chart's identity across reruns")
    height = int(height or figure.layout.height or DEFAULT_HEIGHT)
    _component(spec=plotly.io.to_json(figure, validate=False), height=height, key=key, default=None)
