"""Metadata CRUD (houses, devices, communities, PV parks, PVs, users), from one generic definition
(dashboard/metadata.py, shared with the Admin page).

Lists return only what the caller's scope may see; an id outside the scope answers 404 exactly like a
missing one. Writes need `metadata:write` (users: `users:write`), i.e. admins.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from dashboard.api.common import current_scope, json_body, requires
from dashboard.api.openapi import responds
from dashboard.context import db, services
from dashboard.errors import NotFound, ValidationFailed
from dashboard.metadata import RESOURCES, commit_or_conflict, create_record, delete_device, update_record
from dashboard.privacy import delete_houses, drop_models, erase_user, purge_models
from dashboard.resources import Resource
from dashboard.rollups import delete_rollups_of, subtract_from_fleet
from dashboard.schema import Community, Device, House, User

bp = Blueprint("metadata", __name__, url_prefix="/api/v1")


def _get_visible(resource: Resource, object_id: int) -> Any:
    obj = db().scalar(
        select(resource.model).where(resource.model.id == object_id, resource.visible(current_scope()))
    )
    if obj is None:
        raise NotFound(f"{resource.name} {object_id} not found")
    return obj


def _json(resource: Resource, obj: Any) -> dict:
    """Serialise for the caller; to_json functions that accept a scope may redact by role."""
    if "scope" in resource.to_json.__code__.co_varnames:
        return resource.to_json(obj, scope=current_scope())
    return resource.to_json(obj)


def _commit_or_conflict(last=None) -> None:
    commit_or_conflict(db(), last)


def _query_of(resource: Resource, action: str) -> dict | None:
    if resource.model is User and action == "delete":
        return {"erase": "optional: true erases the user for good (GDPR): their sole houses with devices, "
                "readings, rollups, models and cached forecasts; access-log rows keep a pseudonym"}  # fmt: skip
    return None


def _register(resource: Resource) -> None:
    body_schema = {
        "type": "object",
        "properties": {
            n: {"type": f.schema_type}
            | ({"description": f.description} if f.description else {})
            | ({"maxLength": f.max_length} if f.schema_type == "string" else {})
            | ({"format": f.format} if f.format else {})
            for n, f in resource.fields.items()
        }
        | {n: {"type": "array", "items": {"type": "integer"}} for n in resource.relations},
    }

    def list_view():
        objs = db().scalars(
            select(resource.model).where(resource.visible(current_scope())).order_by(resource.model.id)
        )
        return jsonify({resource.name.replace("-", "_"): [_json(resource, o) for o in objs]})

    def get_view(object_id: int):
        return jsonify(_json(resource, _get_visible(resource, object_id)))

    def create_view():
        obj = create_record(db(), resource, json_body())
        _commit_or_conflict()
        return jsonify(_json(resource, obj)), 201

    def update_view(object_id: int):
        obj = _get_visible(resource, object_id)
        update_record(db(), resource, obj, json_body())
        _commit_or_conflict()
        return jsonify(_json(resource, obj))

    def delete_view(object_id: int):
        obj = _get_visible(resource, object_id)
        erase = request.args.get("erase", "").strip().lower()
        if erase not in ("", "true", "false", "1", "0") or (erase and resource.model is not User):
            raise ValidationFailed(details=[{"field": "erase", "message": "users only: true or false"}])
        svc, model_keys = services(), []
        if resource.model is User and erase in ("true", "1"):
            # GDPR erasure: the user, their sole houses and everything derived from them (dashboard/privacy.py)
            erasure = erase_user(db(), obj.id, svc.settings.secret_key)
            _commit_or_conflict()
            g.access_note = f"erase: {len(erasure.house_ids)} houses, {erasure.readings} readings"
            model_keys = erasure.model_keys
        elif resource.model is House:
            model_keys, fleet_share, _devices, _readings = delete_houses(db(), [obj])
            _commit_or_conflict(last=lambda: subtract_from_fleet(db(), fleet_share))
        elif resource.model is Device:  # its readings leave its house's rollups, which follow its new layout
            fleet_share = delete_device(db(), obj)
            _commit_or_conflict(last=lambda: subtract_from_fleet(db(), fleet_share))
        else:
            if resource.model is Community:  # a deleted community's models go with it
                model_keys = drop_models(db(), [], [obj.id])
            fleet_share = delete_rollups_of(db(), obj)
            db().delete(obj)
            # the fleet's rows last: every ingest needs them, so they are held only for the commit
            _commit_or_conflict(last=lambda: subtract_from_fleet(db(), fleet_share))
        if model_keys:  # after the commit: the objects and cached forecasts of the dropped models
            purge_models(svc.object_store, svc.cache, model_keys)
        return "", 204

    label = resource.name.replace("-", " ")
    views = [
        ("list", "", ["GET"], list_view, resource.read_permission, f"List the {label} you may see.", None, 200),
        ("get", "/<int:object_id>", ["GET"], get_view, resource.read_permission, f"One of the {label}.", None,
         200),
        ("create", "", ["POST"], create_view, resource.write_permission, f"Create one of the {label}.",
         body_schema, 201),
        ("update", "/<int:object_id>", ["PATCH"], update_view, resource.write_permission,
         f"Change one of the {label}.", body_schema, 200),
        ("delete", "/<int:object_id>", ["DELETE"], delete_view, resource.write_permission,
         f"Delete one of the {label}.", None, 204),
    ]  # fmt: skip
    for action, suffix, methods, view, permission, doc, body, status in views:
        view.__doc__ = doc
        view.__name__ = f"{resource.name.replace('-', '_')}_{action}"
        bp.add_url_rule(
            f"/{resource.name}{suffix}",
            endpoint=view.__name__,
            view_func=responds(status)(
                requires(permission, body=body, query=_query_of(resource, action))(view)
            ),
            methods=methods,
        )


for _resource in RESOURCES:
    _register(_resource)
