"""Retention policies, legal holds, purges and backups."""
