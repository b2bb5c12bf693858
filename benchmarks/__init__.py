"""Benchmarks: each bench_*.py has a main() that measures side by side in one run and prints ratios."""
