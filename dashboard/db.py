"""Engine, sessions and migrations.

One engine per process. SQLite gets WAL and foreign keys so the embedded default behaves like the real
database where it matters (cascades, concurrent readers while the simulator writes). Migrations run
through Alembic on both; on PostgreSQL an advisory lock keeps several starting workers from migrating
at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from dashboard.config import Settings
from dashboard.fieldcrypt import check_readable, install, keyring_for, keyring_of

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_ID = 815_2026  # arbitrary, constant: PostgreSQL advisory lock key


def make_engine(settings: Settings) -> Engine:
    engine = _make_engine(settings)
    install(engine, keyring_for(settings))  # personal data at rest (dashboard/fieldcrypt.py)
    return engine


def _make_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        private_sqlite_files(settings.data_dir, url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # JIT off: PostgreSQL compiles a plan once its cost passes jit_above_cost, which every all-houses
    # dashboard query does; on these 0.05-0.5 s aggregates the compilation costs more than it saves
    # (all houses, 30 days of 15-minute rollups: 0.77-0.90 s with JIT, 0.34-0.40 s without).
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"options": "-c jit=off"}
    )


def private_sqlite_files(data_dir: Path, url: str) -> None:
    """DATA_DIR 0700 and the SQLite file 0600 (its -wal and -shm take the file's mode from SQLite)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    db_file = url.split(":///", 1)[-1].split("?", 1)[0]
    if db_file in ("", ":memory:"):
        return
    path = Path(db_file)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.chmod(0o600)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error so nothing is half-written."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


@contextmanager
def migration_connection(engine: Engine):
    """A connection in one transaction for Alembic. On SQLite foreign keys are off meanwhile: a batch
    migration rebuilds a table (copy, drop, rename), and dropping `houses` with foreign keys on would
    cascade-delete every device (the pragma cannot change inside a transaction, so it is set around it)."""
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()  # end SQLAlchemy's autobegun transaction: the pragma itself ran outside one
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
                yield conn
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def migrate_to(engine: Engine, revision: str = "head", down: bool = False) -> None:
    """Upgrade (or downgrade) the schema to `revision` in one transaction."""
    with migration_connection(engine) as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def migrate(engine: Engine) -> None:
    """Bring the database schema to the latest revision (idempotent), then check that the data keys read
    every encrypted value (a wrong DATA_ENCRYPTION_KEY stops here, saying what to set)."""
    with migration_connection(engine) as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        check_readable(conn, keyring_of(engine.dialect))
