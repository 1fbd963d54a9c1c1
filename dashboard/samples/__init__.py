"""The Samples page: samples, interpolation, round trips and bits/dim of a run."""
