"""Train: settings, Start/Pause/Resume/Stop, live curves and samples, all runs (dashboard/train/)."""

from dashboard.train.page import render

render()
