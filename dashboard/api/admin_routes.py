"""Admin-only API: API keys (third-party apps' and field gateways') and the API access log."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from dashboard import auth
from dashboard.api.common import int_param, json_body, requires
from dashboard.api.openapi import responds
from dashboard.auth import api_key_house_ids, create_api_key
from dashboard.clock import iso_utc
from dashboard.context import db
from dashboard.policy import KEY_ROLES, THIRD_PARTY
from dashboard.schema import ApiAccessLog, ApiKey

bp = Blueprint("admin", __name__, url_prefix="/api/v1")


def _key_json(row: ApiKey, house_ids: list[int]) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "house_ids": house_ids,  # a gateway's houses (a deleted house is gone from it); [] for a third party
        "prefix": row.prefix,
        "created_at": iso_utc(row.created_at),
        "revoked_at": iso_utc(row.revoked_at) if row.revoked_at else None,
        "last_used_at": iso_utc(row.last_used_at) if row.last_used_at else None,
    }


@bp.get("/api-keys")
@requires("api_keys:manage")
def list_api_keys():
    """List API keys with their role and houses (never the keys themselves)."""
    rows = db().scalars(select(ApiKey).order_by(ApiKey.id)).all()
    houses = api_key_house_ids(db(), [r.id for r in rows])
    return jsonify({"api_keys": [_key_json(r, houses.get(r.id, [])) for r in rows]})


@bp.post("/api-keys")
@responds(201)
@requires(
    "api_keys:manage",
    body={
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "role": {
                "type": "string",
                "enum": list(KEY_ROLES),
                "default": THIRD_PARTY,
                "description": "third_party: read-only aggregates; gateway: writes the readings of "
                "its houses' devices (POST /api/v1/measurements, also ?replace=true) and reads nothing",
            },
            "house_ids": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "a gateway's houses (at least one); none for third_party",
            },
        },
    },  # fmt: skip
)
def post_api_key():
    """Create an API key (a third-party app's, or a gateway's for its houses); the key is in this response
    only."""
    body = json_body()
    role = THIRD_PARTY if body.get("role") is None else body["role"]
    row, key = create_api_key(db(), body.get("name"), role, body.get("house_ids"))
    houses = api_key_house_ids(db(), [row.id]).get(row.id, [])
    db().commit()
    return jsonify(_key_json(row, houses) | {"key": key, "header": "X-API-Key"}), 201


@bp.delete("/api-keys/<int:key_id>")
@responds(204)
@requires("api_keys:manage")
def revoke_api_key(key_id: int):
    """Revoke an API key: its next request is refused (401)."""
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
