"""Benchmarks run by `nfzoo bench NAME`: each measures a baseline and a candidate in the same run."""
