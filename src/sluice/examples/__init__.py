"""Generators of example data sets for demos, tests and benchmarks (see docs/guide/example-data.md)."""
