"""Benchmarks (not part of the test suite's pass/fail; `scripts/bench` runs them)."""
