"""Workspaces: the tenants. Every table's key starts with a workspace id."""
