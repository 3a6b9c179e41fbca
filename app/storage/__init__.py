"""Durable storage: SQLAlchemy models, engine and Alembic migrations (SQLite WAL or PostgreSQL)."""
