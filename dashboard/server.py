"""The app factory: one Flask server carrying the REST API, the spec's endpoints and (via app.py) Dash.

Wires settings, database (migrated on start), JWT auth and the API in one readable place.
"""

from __future__ import annotations

from flask import Flask

from dashboard.api import register_api
from dashboard.api.common import Services
from dashboard.api.json_provider import FiniteJSONProvider
from dashboard.auth import init_jwt
from dashboard.config import Settings, load_settings
from dashboard.db import make_engine, make_session_factory, migrate
from jobs import context as jobs_context


def create_server(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    server = Flask("aggregator")
    server.json = FiniteJSONProvider(server)  # NaN/Infinity go out as null in every JSON response
    server.config.update(
        SECRET_KEY=settings.secret_key,
        # 10,000 readings of ~250 bytes each fit with room to spare; more is refused before parsing.
        MAX_CONTENT_LENGTH=max(8 * 1024 * 1024, settings.max_batch_readings * 800),
        JSON_SORT_KEYS=False,
    )
    engine = make_engine(settings)
    migrate(engine)
    session_factory = make_session_factory(engine)
    server.extensions["aggregator"] = Services(settings, engine, session_factory)
    init_jwt(server, settings, session_factory)
    register_api(server)
    jobs_context.configure(settings)  # in-process jobs see this app's database and store

    @server.get("/healthz")
    def healthz():
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    return server
