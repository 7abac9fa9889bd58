"""Running artifacts and timing them (end to end here; per kernel with the profiler)."""
