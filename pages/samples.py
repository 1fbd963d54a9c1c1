"""Samples: a run's samples, interpolation, round trip, bits/dim per digit (dashboard/samples/view.py)."""

from dashboard.samples.view import samples_page

samples_page()
