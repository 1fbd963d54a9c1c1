"""The Jacobian page: analytic log|det| against autograd, one coupling's Jacobian."""
