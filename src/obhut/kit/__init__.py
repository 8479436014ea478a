"""Shared plumbing with no domain knowledge: settings, database, errors, clock, ids."""
