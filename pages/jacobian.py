"""Jacobian: each layer's analytic log|det| beside autograd, one coupling's Jacobian, the derivation."""

from dashboard.jacobian.page import render

render()
