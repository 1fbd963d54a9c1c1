"""Train: settings, Start/Pause/Resume/Stop, live curves and samples, all runs (dashboard/train_view.py)."""

from dashboard.train_view import train_page

train_page()
