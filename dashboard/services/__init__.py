"""Long-lived services of the server process: the run manager and the cached state."""
