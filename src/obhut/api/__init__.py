"""The HTTP edge. Nothing imports it."""
