"""The access log of API calls and of the UI's data access (spec 1.7: who called what, when, with which outcome
and latency), written after each request; retention is in dashboard/maintenance.py.

Each row also keeps the client's address truncated (IPv4 /24, IPv6 /48: enough to tell networks apart,
not a household) and what was asked for: the path's object id and the house_id / community_id / device_id
query parameters, plus a route's own note (a correction, an export, an erasure). The UI's data access is
every Dash callback (pages' data, exports, training), logged as `dash:<output>`."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import Flask, g, request
from sqlalchemy import or_, update

from dashboard.api.errors import is_api
from dashboard.api.outages import outage_service
from dashboard.clients import truncate_address
from dashboard.clock import utcnow
from dashboard.context import services
from dashboard.schema import ApiAccessLog, ApiKey

log = logging.getLogger(__name__)


def _start_timer() -> None:
    g.started = time.perf_counter()


TARGET_PARAMS = ("house_id", "community_id", "device_id")


def _dash_callback() -> str | None:
    """`dash:<outputs>` for a Dash callback request (the UI's data access), else None."""
    if not (request.method == "POST" and request.path.endswith("/_dash-update-component")):
        return None
    payload = request.get_json(silent=True)  # parsed once (the guard's and Dash's, cached; safe loader)
    output = payload.get("output", "") if isinstance(payload, dict) else ""
    return "dash:" + (output if isinstance(output, str) else "?")[:200]


def _target() -> str | None:
    """What was asked for: the path's ids, the scope's query parameters and the route's note."""
    parts = [f"{k}={v}" for k, v in sorted((request.view_args or {}).items()) if k.endswith("id")]
    parts += [f"{k}={request.args[k][:40]}" for k in TARGET_PARAMS if request.args.get(k)]
    if request.args.get("replace"):
        parts.append(f"replace={request.args['replace'][:10]}")
    if g.get("access_note"):
        parts.append(g.access_note)
    return " ".join(parts)[:255] or None


def _write_entry(response):
    dash = _dash_callback()
    if not ((is_api() or dash) and "started" in g):
        return response
    scope = g.get("scope")
    rule = dash or (request.url_rule.rule if request.url_rule else request.path[:255])
    entry = {
        "at": utcnow(),
        "user_id": scope.user_id if scope else None,
        "api_key_id": scope.api_key_id if scope else None,
        "method": request.method,
        "route": rule,
        "status": response.status_code,
        "latency_ms": round((time.perf_counter() - g.started) * 1000, 2),
        "client": truncate_address(request.remote_addr),
        "target": _target(),
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
    except Exception as exc:  # the log must never break the request it describes
        if outage_service(exc) is not None:  # the database went away mid-request: a line, not a traceback
            log.warning("Could not write the access log: %s", exc.__class__.__name__)
        else:
            log.exception("Could not write the access log")
    return response


def install_access_log(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_write_entry)
