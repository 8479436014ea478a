"""Obhut: a self-hosted, privacy-first customer identity and data platform."""

__version__ = "0.1.0"
