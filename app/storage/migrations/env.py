"""Alembic environment: runs online on the connection :func:`fuselens.app.storage.db.upgrade`
passes."""

from __future__ import annotations

from alembic import context

from fuselens.app.storage.db import make_engine
from fuselens.app.storage.models import Base

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("FuseLens migrations run online only (app.storage.db.upgrade)")
run_migrations_online()
