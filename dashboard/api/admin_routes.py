"""Admin-only API: third-party API keys and the API access log."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from dashboard import auth
from dashboard.api.common import int_param, json_body, requires
from dashboard.api.openapi import responds
from dashboard.auth import create_api_key
from dashboard.clock import iso_utc
from dashboard.context import db
from dashboard.schema import ApiAccessLog, ApiKey

bp = Blueprint("admin", __name__, url_prefix="/api/v1")


def _key_json(row: ApiKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": iso_utc(row.created_at),
        "revoked_at": iso_utc(row.revoked_at) if row.revoked_at else None,
        "last_used_at": iso_utc(row.last_used_at) if row.last_used_at else None,
    }


@bp.get("/api-keys")
@requires("api_keys:manage")
def list_api_keys():
    """List third-party API keys (never the keys themselves)."""
    rows = db().scalars(select(ApiKey).order_by(ApiKey.id))
    return jsonify({"api_keys": [_key_json(r) for r in rows]})


@bp.post("/api-keys")
@responds(201)
@requires(
    "api_keys:manage",
    body={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
)
def post_api_key():
    """Create a third-party API key; the key is in this response only."""
    row, key = create_api_key(db(), json_body().get("name"))
    db().commit()
    return jsonify(_key_json(row) | {"key": key, "header": "X-API-Key"}), 201


@bp.delete("/api-keys/<int:key_id>")
@responds(204)
@requires("api_keys:manage")
def revoke_api_key(key_id: int):
    """Revoke a third-party API key."""
    auth.revoke_api_key(db(), key_id)
    db().commit()
    return "", 204


@bp.get("/access-log")
@requires("access_log:read", query={"limit": "rows, newest first (default 100, at most 1000)"})
def get_access_log():
    """The newest API access log rows: who called which route, the status and the latency."""
    limit = min(max(int_param("limit", request.args.get("limit")) or 100, 1), 1000)
    rows = db().scalars(select(ApiAccessLog).order_by(ApiAccessLog.id.desc()).limit(limit))
    return jsonify(
        {
            "entries": [
                {
                    "at": iso_utc(r.at),
                    "user_id": r.user_id,
                    "api_key_id": r.api_key_id,
                    "method": r.method,
                    "route": r.route,
                    "status": r.status,
                    "latency_ms": r.latency_ms,
                    "client": r.client,
                    "target": r.target,
                    "user_pseudonym": r.user_pseudonym,
                }
                for r in rows
            ]
        }
    )
