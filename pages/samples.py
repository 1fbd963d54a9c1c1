"""Samples: a run's samples, interpolation, round trip, bits/dim per digit (dashboard/samples_view.py)."""

from dashboard.samples_view import samples_page

samples_page()
