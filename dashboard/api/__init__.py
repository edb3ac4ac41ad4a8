"""The REST API: blueprints, the one place domain errors become JSON, and the access log."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import Flask, g, jsonify, request
from sqlalchemy import delete, or_, update
from werkzeug.exceptions import HTTPException

from dashboard.api import (
    admin_routes,
    analytics_routes,
    auth_routes,
    data_routes,
    export_routes,
    forecast_routes,
    metadata_routes,
    openapi,
    weather_routes,
)
from dashboard.api.common import services
from dashboard.auth import utcnow
from dashboard.errors import DomainError, RateLimited
from dashboard.schema import ApiAccessLog, ApiKey

log = logging.getLogger(__name__)
API_PREFIXES = ("/api/", "/aggregator/")


def _is_api() -> bool:
    return request.path.startswith(API_PREFIXES)


def error_body(exc: DomainError) -> dict:
    body: dict = {"error": exc.error}
    if exc.details:
        body["details"] = exc.details
    elif exc.message != exc.error:
        body["detail"] = exc.message
    return body


def register_api(app: Flask) -> None:
    for blueprint in (
        auth_routes.bp,
        auth_routes.browser,
        data_routes.bp,
        metadata_routes.bp,
        admin_routes.bp,
        forecast_routes.bp,
        analytics_routes.bp,
        export_routes.bp,
        weather_routes.bp,
        openapi.bp,
    ):
        app.register_blueprint(blueprint)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        if "db" in g:
            g.db.rollback()  # nothing is half-written
        response = jsonify(error_body(exc))
        response.status_code = exc.status
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not _is_api():
            return exc
        body = {"error": exc.name}
        if exc.code == 413:
            body["detail"] = "The request body is too large; split the batch"
        return jsonify(body), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if "db" in g:
            g.db.rollback()
        log.exception("Unhandled error on %s %s", request.method, request.path)
        if isinstance(exc, HTTPException):
            return exc
        if _is_api():
            return jsonify({"error": "Internal server error"}), 500
        return "Internal server error", 500

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _access_log(response):
        if _is_api() and "started" in g:
            scope = g.get("scope")
            rule = request.url_rule.rule if request.url_rule else request.path[:255]
            entry = {
                "at": utcnow(),
                "user_id": scope.user_id if scope else None,
                "api_key_id": scope.api_key_id if scope else None,
                "method": request.method,
                "route": rule,
                "status": response.status_code,
                "latency_ms": round((time.perf_counter() - g.started) * 1000, 2),
            }
            try:
                with services().engine.begin() as conn:
                    conn.execute(ApiAccessLog.__table__.insert(), entry)
                    if entry["api_key_id"] is not None:  # "last used", at most one write a minute per key
                        conn.execute(
                            update(ApiKey)
                            .where(
                                ApiKey.id == entry["api_key_id"],
                                or_(
                                    ApiKey.last_used_at.is_(None),
                                    ApiKey.last_used_at < entry["at"] - timedelta(minutes=1),
                                ),
                            )
                            .values(last_used_at=entry["at"])
                        )
            except Exception:  # the log must never break the request it describes
                log.exception("Could not write the access log")
        return response

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()


def prune_access_log(session, retention_days: int) -> int:
    """Delete access-log rows older than the retention (spec 1.7: logs are rotated)."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(days=retention_days)
    return session.execute(delete(ApiAccessLog).where(ApiAccessLog.at < cutoff)).rowcount
