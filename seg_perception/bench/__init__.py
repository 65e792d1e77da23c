"""Benchmarks and soak runs: they print JSON figures; they are not tests."""
