"""Storage: Alembic migrations build every table on an empty database; SQLite runs in WAL."""

from __future__ import annotations

from sqlalchemy import inspect

from fuselens.app.storage.db import database_url, make_engine, upgrade
from fuselens.app.storage.models import Base


def test_upgrade_on_empty_database_creates_every_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    upgrade(url)  # a second run is a no-op
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        tables = set(insp.get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
        for name, table in Base.metadata.tables.items():
            columns = {c["name"] for c in insp.get_columns(name)}
            assert columns == {c.name for c in table.columns}, name
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()


def test_database_url_prefers_env_then_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("FUSELENS_DB_URL", raising=False)
    monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data"))
    assert database_url() == f"sqlite:///{tmp_path / 'data' / 'fuselens.db'}"
    assert (tmp_path / "data").is_dir()
    monkeypatch.setenv("FUSELENS_DB_URL", "postgresql://u@h/db")
    assert database_url() == "postgresql://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
