"""Home: what a normalizing flow is, the seed's F = f0 o f1, the MNIST status, and links to every page."""

from dashboard.home.page import render

render()
