"""Migration 0004 on PostgreSQL and SQLite: the weather already stored keeps its location names (each
becomes a weather location), every stored row counts as an observation, and places start empty."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dashboard import db
from dashboard.config import load_settings
from dashboard.db import make_engine
from tests.conftest import TEST_SECRET, fresh_pg_database


def migrate_to(engine, revision: str, down: bool = False) -> None:
    db.migrate_to(engine, revision, down=down)


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text(sql))]


def two_houses(conn) -> list[int]:
    """Two houses inserted by SQL (a migration test, before the app's schema), their ids."""
    for name in ("h1", "h2"):
        conn.execute(
            text("INSERT INTO houses (name, created_at) VALUES (:n, '2026-01-01 00:00:00')"), {"n": name}
        )
    return [r[0] for r in conn.execute(text("SELECT id FROM houses ORDER BY id"))]


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


def test_0004_turns_stored_weather_into_locations_and_back(engine):
    migrate_to(engine, "0003")
    with engine.begin() as c:
        c.execute(text("INSERT INTO houses (name, created_at) VALUES ('h', '2026-01-01 00:00:00')"))
        c.execute(text(
            "INSERT INTO weather_observations (location, latitude, longitude, time, temperature_c) VALUES "
            "('demo-site', 37.98, 23.73, '2026-01-01 00:00:00', 10.5), "
            "('demo-site', 37.98, 23.73, '2026-01-01 01:00:00', 10.0), "
            "('patras', 38.25, 21.73, '2026-01-01 00:00:00', 12.0)"
        ))  # fmt: skip
    migrate_to(engine, "0004")
    assert rows(engine, "SELECT name, latitude, longitude FROM weather_locations ORDER BY name") == [
        ("demo-site", 37.98, 23.73),
        ("patras", 38.25, 21.73),
    ]
    assert rows(engine, "SELECT location, is_forecast FROM weather_observations ORDER BY id") == [
        ("demo-site", False), ("demo-site", False), ("patras", False)
    ]  # fmt: skip
    assert rows(engine, "SELECT timezone, country, latitude, longitude FROM houses") == [
        (None, None, None, None)
    ]
    assert rows(engine, "SELECT timezone, country, latitude, longitude FROM communities") == []
    # a location's rows go with it (the foreign key)
    with engine.begin() as c:
        c.execute(text("DELETE FROM weather_locations WHERE name = 'patras'"))
        c.execute(text(
            "INSERT INTO weather_observations (location, latitude, longitude, time, temperature_c, is_forecast) "
            "VALUES ('demo-site', 37.98, 23.73, '2026-01-01 02:00:00', 9.0, TRUE)"
        ))  # fmt: skip
    assert rows(engine, "SELECT location FROM weather_observations ORDER BY id") == [("demo-site",)] * 3
    # back to 0003: forecast rows go (0003 had none), observations stay
    migrate_to(engine, "0003", down=True)
    assert rows(engine, "SELECT location, temperature_c FROM weather_observations ORDER BY time") == [
        ("demo-site", 10.5), ("demo-site", 10.0)
    ]  # fmt: skip
    migrate_to(engine, "head")
