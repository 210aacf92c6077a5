"""Command-line tools around the nodes and the pipeline (players, benches, demo, profiling)."""
