"""The Model page: the seed's MLPs, a forward pass and the real coupling source."""
