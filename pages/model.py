"""Model: the seed's MLP builder with its two GAN-shaped examples, and the coupling layers' real source."""

from dashboard.model.page import render

render()
