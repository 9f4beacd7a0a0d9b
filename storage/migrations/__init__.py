"""Alembic migrations for SQLite and PostgreSQL. Being built (issue 17)."""
