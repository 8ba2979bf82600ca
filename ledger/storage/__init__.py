"""Persistence: SQLModel tables, the engine, Alembic migrations and the repository.

Only this package talks SQL. Everything else goes through ``Repository``.
"""
