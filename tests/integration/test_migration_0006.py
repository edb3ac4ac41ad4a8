"""Migration 0006 on PostgreSQL and SQLite: existing users get token generation 0 (the generation tokens
issued before it are read as), new rows default to 0, and the downgrade drops the column."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from dashboard.config import load_settings
from dashboard.db import make_engine
from tests.conftest import TEST_SECRET, fresh_pg_database
from tests.integration.test_migration_0004 import migrate_to, rows

BEFORE = "0005_device_max_power"


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request, tmp_path):
    env = {"DATA_DIR": str(tmp_path), "DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET}
    if request.param == "sqlite":
        engine = make_engine(load_settings(env))
        yield engine
        engine.dispose()
        return
    with fresh_pg_database("aggmig") as url:
        engine = make_engine(load_settings(env | {"DATABASE_URL": url}))
        yield engine
        engine.dispose()


def test_0006_adds_token_generation_and_back(engine):
    migrate_to(engine, BEFORE)
    insert = (
        "INSERT INTO users (username, password_hash, role, is_active, created_at) "
        "VALUES (:u, 'x', 'admin', true, '2026-01-01 00:00:00')"
    )
    with engine.begin() as c:
        c.execute(text(insert), {"u": "old"})
    migrate_to(engine, "0006_token_generation")
    with engine.begin() as c:
        c.execute(text(insert), {"u": "new"})
    assert rows(engine, "SELECT username, token_generation FROM users ORDER BY id") == [
        ("old", 0),
        ("new", 0),
    ]
    migrate_to(engine, BEFORE, down=True)
    assert "token_generation" not in {c["name"] for c in inspect(engine).get_columns("users")}
