"""Consumers of core events: pretty (Rich), json, full, events.

Only pretty.py (and what the CLI asks of it) imports rich: machine output
must stay fast and plain.
"""
