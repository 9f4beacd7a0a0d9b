"""Distributed collection on PostgreSQL with Procrastinate workers. Being built (issue 17)."""
