"""Training, evaluation and benchmarks of the digit CNN (uses `vision` and `db`)."""
