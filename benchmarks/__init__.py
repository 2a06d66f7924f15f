"""Benchmarks: figures measured on real runs (docs/benchmarks.md)."""
