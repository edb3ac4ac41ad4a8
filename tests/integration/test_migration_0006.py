"""Migration 0006 on PostgreSQL and SQLite: existing users get token generation 0 (the generation tokens
issued before it are read as), new rows default to 0, and the downgrade drops the column."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.integration.test_migration_0004 import engine, migrate_to, rows  # noqa: F401  (fixture)

BEFORE = "0005_device_max_power"


def test_0006_adds_token_generation_and_back(engine):  # noqa: F811
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
