"""The Home page: the two-moons picture, the seed's formulas, the MNIST download."""
