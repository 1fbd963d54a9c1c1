"""Train: settings, Start/Pause/Resume/Stop, live curves and samples, all runs (dashboard/train/view.py)."""

from dashboard.train.view import train_page

train_page()
