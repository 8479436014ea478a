"""The command-line edge. Nothing imports it."""
