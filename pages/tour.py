"""Guided tour: one real digit followed through a whole flow, step by step, and a sample's way back."""

from dashboard.tour.page import render

render()
