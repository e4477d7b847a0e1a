"""Benchmarks, each measuring Saisine against a bound in the same run (docs/benchmarks.md)."""
