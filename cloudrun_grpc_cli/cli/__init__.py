"""The command line: typer commands that parse options into settings, call
the core, hand events to a renderer, and map errors to exit codes (main.py is
the one place that does)."""
