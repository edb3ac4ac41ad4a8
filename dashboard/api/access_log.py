"""The access log of API calls (spec 1.7: who called what, when, with which outcome and latency), written
after each request; retention is in dashboard/maintenance.py."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import Flask, g, request
from sqlalchemy import or_, update

from dashboard.api.errors import is_api
from dashboard.clock import utcnow
from dashboard.context import services
from dashboard.schema import ApiAccessLog, ApiKey

log = logging.getLogger(__name__)


def _start_timer() -> None:
    g.started = time.perf_counter()


def _write_entry(response):
    if not (is_api() and "started" in g):
        return response
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


def install_access_log(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_write_entry)
