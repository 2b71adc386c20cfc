"""Benchmarks of the hot paths, each against a baseline measured in the same run."""
