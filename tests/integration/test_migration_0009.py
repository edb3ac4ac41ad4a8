"""Migration 0009 on PostgreSQL and SQLite: existing API keys become third_party keys (what they were), a new
key may be a gateway linked to houses, a deleted house or key takes its links with it, an unknown role is
refused by the database, and the downgrade drops the role and the links (refused while a gateway key is
active, since it would become a third-party key that reads aggregates)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from tests.integration.test_migration_0004 import engine, migrate_to, rows  # noqa: F401  (fixture)

BEFORE, AFTER = "0008_personal_fields", "0009_api_key_roles"
KEY = (
    "INSERT INTO api_keys (name, prefix, key_hash, created_at{role}) "
    "VALUES (:n, 'agk_x', :h, '2026-01-01 00:00:00'{value})"
)


def add_key(db_engine, name: str, role: str | None = None) -> int:
    sql = KEY.format(role=", role" if role else "", value=", :r" if role else "")
    with db_engine.begin() as c:
        c.execute(text(sql), {"n": name, "h": name.ljust(64, "0"), "r": role})
        return c.execute(text("SELECT id FROM api_keys WHERE name = :n"), {"n": name}).scalar()


def test_0009_gives_existing_keys_the_third_party_role_and_back(engine):  # noqa: F811
    migrate_to(engine, BEFORE)
    old = add_key(engine, "old app")
    with engine.begin() as c:
        for name in ("h1", "h2"):
            c.execute(
                text("INSERT INTO houses (name, created_at) VALUES (:n, '2026-01-01 00:00:00')"), {"n": name}
            )
    migrate_to(engine, AFTER)
    assert rows(engine, "SELECT id, name, role FROM api_keys") == [(old, "old app", "third_party")]
    unnamed = add_key(engine, "new default")  # the server default
    gateway = add_key(engine, "gateway", "gateway")
    h1, h2 = (r[0] for r in rows(engine, "SELECT id FROM houses ORDER BY id"))
    with engine.begin() as c:
        c.execute(text("INSERT INTO api_key_houses (api_key_id, house_id) VALUES (:k, :a), (:k, :b)"),
                  {"k": gateway, "a": h1, "b": h2})  # fmt: skip
    assert rows(engine, "SELECT id, role FROM api_keys ORDER BY id") == [
        (old, "third_party"), (unnamed, "third_party"), (gateway, "gateway")
    ]  # fmt: skip
    with pytest.raises(IntegrityError):
        add_key(engine, "bad role", "admin")
    with pytest.raises(IntegrityError), engine.begin() as c:  # links only to real houses
        c.execute(text("INSERT INTO api_key_houses (api_key_id, house_id) VALUES (:k, 999)"), {"k": gateway})
    # a deleted house takes its link with it; the key stays
    with engine.begin() as c:
        c.execute(text("DELETE FROM houses WHERE id = :h"), {"h": h1})
    assert rows(engine, "SELECT api_key_id, house_id FROM api_key_houses") == [(gateway, h2)]
    # the downgrade would turn an active gateway key into a third-party key: refused, nothing changed
    with pytest.raises(RuntimeError, match="gateway API key"):
        migrate_to(engine, BEFORE, down=True)
    assert rows(engine, "SELECT version_num FROM alembic_version") == [(AFTER,)]
    with engine.begin() as c:
        c.execute(
            text("UPDATE api_keys SET revoked_at = '2026-01-02 00:00:00' WHERE id = :k"), {"k": gateway}
        )
    migrate_to(engine, BEFORE, down=True)
    assert "role" not in {c["name"] for c in inspect(engine).get_columns("api_keys")}
    assert "api_key_houses" not in inspect(engine).get_table_names()
    assert rows(engine, "SELECT id, name FROM api_keys ORDER BY id") == [
        (old, "old app"), (unnamed, "new default"), (gateway, "gateway")
    ]  # fmt: skip
    migrate_to(engine, "head")  # and up again
    assert rows(engine, "SELECT DISTINCT role FROM api_keys") == [("third_party",)]


def test_0009_deleting_a_key_deletes_its_links(engine):  # noqa: F811
    migrate_to(engine, AFTER)
    with engine.begin() as c:
        c.execute(text("INSERT INTO houses (name, created_at) VALUES ('h', '2026-01-01 00:00:00')"))
    gateway = add_key(engine, "gw", "gateway")
    with engine.begin() as c:
        house = c.execute(text("SELECT id FROM houses")).scalar()
        c.execute(
            text("INSERT INTO api_key_houses (api_key_id, house_id) VALUES (:k, :h)"),
            {"k": gateway, "h": house},
        )
        c.execute(text("DELETE FROM api_keys WHERE id = :k"), {"k": gateway})
    assert rows(engine, "SELECT count(*) FROM api_key_houses") == [(0,)]
    assert rows(engine, "SELECT count(*) FROM houses") == [(1,)]
