"""Session settings of the app's PostgreSQL connections."""

from __future__ import annotations

from sqlalchemy import text


def test_postgresql_connections_run_without_jit(app):
    # the server default is on; dashboard aggregates are faster without plan compilation (dashboard/db.py)
    engine = app.server.extensions["aggregator"].engine
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar() == "off"
