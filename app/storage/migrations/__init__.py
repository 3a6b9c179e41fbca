"""Alembic migrations of the FuseLens schema (run by :func:`app.storage.db.upgrade`)."""
