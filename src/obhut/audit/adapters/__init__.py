"""Checkpoint sinks: an append-only file and a webhook."""
