"""Migration 0005 on PostgreSQL and SQLite: devices get an empty `max_power_w` (MAX_POWER_W applies), and a
downgrade removes it, keeping the devices."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.integration.test_migration_0004 import engine, migrate_to, rows  # noqa: F401  (fixture)


def columns(bind) -> set[str]:
    return {c["name"] for c in inspect(bind).get_columns("devices")}


def test_0005_adds_an_empty_device_bound_and_back(engine):  # noqa: F811
    migrate_to(engine, "0004")
    with engine.begin() as c:
        c.execute(text("INSERT INTO houses (name, created_at) VALUES ('h', '2026-01-01 00:00:00')"))
        c.execute(text(
            "INSERT INTO devices (serial, name, kind, direction, house_id, created_at) "
            "SELECT 'M-1', 'Main', 'meter', 'consumption', id, '2026-01-01 00:00:00' FROM houses"
        ))  # fmt: skip
    assert "max_power_w" not in columns(engine)
    migrate_to(engine, "0005_device_max_power")
    assert rows(engine, "SELECT serial, max_power_w FROM devices") == [("M-1", None)]
    with engine.begin() as c:
        c.execute(text("UPDATE devices SET max_power_w = 30000.0"))
    assert rows(engine, "SELECT max_power_w FROM devices") == [(30000.0,)]
    migrate_to(engine, "head")
    migrate_to(engine, "0004", down=True)
    assert "max_power_w" not in columns(engine)
    assert rows(engine, "SELECT serial FROM devices") == [("M-1",)]
