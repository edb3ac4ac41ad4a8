"""The app factory: one Flask server carrying the REST API, the spec's endpoints and (via app.py) Dash.

Wires the services (dashboard/context.py; the database migrated on start), JWT auth and the API in one
readable place.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.api import register_api
from dashboard.api.json_provider import FiniteJSONProvider
from dashboard.api.openapi import SWAGGER_HTML
from dashboard.api.outages import register_outage_handling
from dashboard.auth import init_jwt
from dashboard.config import Settings, load_settings
from dashboard.context import EXTENSION, build_services, db
from dashboard.http_headers import allow_inline_scripts, install_security_headers, script_hashes


def create_server(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    server = Flask("aggregator")
    if settings.trusted_proxies:  # behind N proxies: the client, scheme and host they forwarded
        n = settings.trusted_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n)
    server.json = FiniteJSONProvider(server)  # NaN/Infinity go out as null in every JSON response
    server.config.update(
        SECRET_KEY=settings.secret_key,
        # 10,000 readings of ~250 bytes each fit with room to spare; more is refused before parsing.
        MAX_CONTENT_LENGTH=max(8 * 1024 * 1024, settings.max_batch_readings * 800),
        JSON_SORT_KEYS=False,
    )
    services = build_services(settings, migrate_database=True)
    server.extensions[EXTENSION] = services
    init_jwt(server, settings, services.session_factory, request_session=db)
    register_api(server)
    register_outage_handling(server)  # 503 + Retry-After for outages, /readyz
    install_security_headers(server, settings)
    allow_inline_scripts(server, script_hashes(SWAGGER_HTML))

    @server.get("/healthz")
    def healthz():
        """Liveness: the process answers. Readiness (database, Redis, object store) is /readyz."""
        return {"status": "ok"}

    return server
