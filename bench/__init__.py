"""Benchmarks: `python -m bench.webhook` (see docs/benchmarks.md)."""
