"""One module per `digits` command: its arguments and the wiring of settings into libraries."""
