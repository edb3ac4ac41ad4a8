"""A data subject's export (GDPR art. 15 and 20): `GET /api/v1/auth/me/export` (the caller's own) and
`GET /api/v1/users/{id}/export` (admins). JSON, or for more than 100,000 readings a zip of CSVs streamed in
bounded memory. Erasure is `DELETE /api/v1/users/{id}?erase=true` (dashboard/api/metadata_routes.py). The
rules: dashboard/subject_export.py and docs/privacy.md."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from dashboard.api.common import current_scope, requires
from dashboard.clock import iso_utc, utcnow
from dashboard.context import db, services
from dashboard.schema import ApiKey
from dashboard.subject_export import export_json, export_plan, export_zip

bp = Blueprint("privacy", __name__, url_prefix="/api/v1")


def _export(user_id: int):
    plan = export_plan(db(), user_id)
    g.access_note = f"export of user {user_id}: {plan.readings} readings"
    if not plan.as_zip:
        return jsonify(export_json(db(), user_id))
    return Response(
        export_zip(services().session_factory, user_id),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="user-{user_id}-export.zip"'},
    )


@bp.get("/auth/me/export")
@requires("auth:me")
def export_me():
    """Everything stored about you: account, houses, devices and every reading (JSON; a zip of CSVs above
    100,000 readings)."""
    scope = current_scope()
    if scope.user_id is None:  # an API key: its own record is all there is (no houses, no readings)
        key = db().get(ApiKey, scope.api_key_id)
        return jsonify({"exported_at": iso_utc(utcnow().replace(microsecond=0)),
                        "api_key": {"id": key.id, "name": key.name, "prefix": key.prefix,
                                    "created_at": iso_utc(key.created_at)},
                        "houses": [], "devices": [], "readings": []})  # fmt: skip
    return _export(scope.user_id)


@bp.get("/users/<int:user_id>/export")
@requires("users:read")
def export_user(user_id: int):
    """Everything stored about one user: account, houses, devices and every reading (JSON; a zip of CSVs
    above 100,000 readings)."""
    return _export(user_id)
