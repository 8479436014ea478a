"""The database engines a backup copies: SQLite (the backup API) and PostgreSQL (pg_dump/pg_restore)."""
