"""Flow Lab's benchmark against peer flow libraries: ``python -m bench`` (see bench/NOTES.md)."""
