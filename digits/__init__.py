"""The `digits` command: a thin dispatcher plus the one place that reads settings."""
