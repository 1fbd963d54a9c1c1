"""The Flow Playground: its session, targets, background run, figures and export."""
