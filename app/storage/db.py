"""Engine, sessions and migrations: ``FUSELENS_DB_URL``, else a SQLite file in the data folder.

SQLite runs in WAL mode with a busy timeout and ``BEGIN IMMEDIATE`` transactions, so
concurrent writers (threads of one server, or several processes) queue instead of failing,
and ``synchronous=FULL`` so a committed answer survives the process being killed.

The data folder and a SQLite file are created private to their owner (0700 and 0600): they
hold readers' answers, password hashes and patients' case data; SQLite gives its ``-wal``
and ``-shm`` files the database file's own mode.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DB_FILE = "fuselens.db"
BUSY_TIMEOUT_MS = 30_000
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def data_dir() -> Path:
    """``FUSELENS_DATA_DIR``, else ``~/.local/share/fuselens`` (created)."""
    default = Path.home() / ".local" / "share" / "fuselens"
    folder = Path(os.environ.get("FUSELENS_DATA_DIR") or default).expanduser()
    private_dir(folder)
    return folder


def bundle_dir() -> Path:
    """Where explanation bundles are stored: ``FUSELENS_BUNDLE_DIR``, else ``bundles`` in the
    data folder (created private)."""
    env = os.environ.get("FUSELENS_BUNDLE_DIR")
    folder = Path(env).expanduser() if env else data_dir() / "bundles"
    private_dir(folder)
    return folder


def private_dir(folder: Path) -> None:
    """Create ``folder`` and any missing parents as 0700 (an existing folder is left as is)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        path.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask


def private_file(path: Path) -> None:
    """Create an empty ``path`` as 0600 unless it exists (SQLite then opens it as it is)."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        return
    path.chmod(PRIVATE_FILE_MODE)


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, ``FUSELENS_DB_URL``, or the SQLite file in the data folder."""
    return url or os.environ.get("FUSELENS_DB_URL") or f"sqlite:///{data_dir() / DB_FILE}"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below opens transactions
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection) -> None:  # noqa: ANN001
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (see :func:`database_url`); SQLite gets WAL and a busy timeout."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_file(Path(parsed.database).expanduser())
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _sqlite_setup(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Run the Alembic migrations on ``url`` up to ``revision``."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def open_database(url: str | None = None) -> tuple[Engine, sessionmaker[Session]]:
    """Migrate ``url`` to the newest schema and return its engine and session factory."""
    upgrade(url)
    engine = make_engine(url)
    return engine, session_factory(engine)
