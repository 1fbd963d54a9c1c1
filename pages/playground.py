"""Flow Playground: train NICE or RealNVP live on a 2D target and look inside it, layer by layer."""

from dashboard.playground.page import render

render()
