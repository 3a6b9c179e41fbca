"""Alembic migrations of the FuseLens schema (run by :func:`fuselens.app.storage.db.upgrade`)."""
