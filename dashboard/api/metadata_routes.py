"""Metadata CRUD (houses, devices, communities, PV parks, PVs, users), from one generic definition.

Lists return only what the caller's scope may see; an id outside the scope answers 404 exactly like a
missing one. Writes need `metadata:write` (users: `users:write`), i.e. admins.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, g, jsonify, request
from sqlalchemy import false, select, true
from sqlalchemy.exc import IntegrityError

from dashboard.api.common import current_scope, json_body, requires
from dashboard.api.openapi import responds
from dashboard.api.resources import Field, Resource, validate
from dashboard.auth import create_user, set_password
from dashboard.clock import utcnow
from dashboard.config import check_country, check_latitude, check_longitude, check_timezone
from dashboard.context import db, services
from dashboard.errors import Conflict, NotFound, ValidationFailed
from dashboard.policy import ROLES
from dashboard.privacy import community_visible, delete_houses, drop_models, erase_user, purge_models
from dashboard.rollups import delete_rollups_of, subtract_from_fleet
from dashboard.schema import DEVICE_KINDS, DIRECTIONS, PV, Community, Device, House, PVPark, User
from dashboard.scope import Scope
from dashboard.untrusted import check_email, personal_text

bp = Blueprint("metadata", __name__, url_prefix="/api/v1")


def _house_visible(scope: Scope):
    return true() if scope.all_houses else House.id.in_(scope.house_ids)


def _by_house(column):
    return lambda scope: true() if scope.all_houses else column.in_(scope.house_ids)


def _device_defaults(device: Device, data: dict, creating: bool) -> None:
    if creating and not device.serial:
        device.serial = f"dev-{secrets.token_hex(6)}"  # the client may choose; else generated
    if creating and not device.direction:
        device.direction = "production" if device.kind == "pv" else "consumption"
    if device.kind == "appliance" and device.direction == "production":
        raise ValidationFailed(details=[{"field": "direction", "message": "appliances consume"}])
    if (device.house_id is None) == (device.pv_park_id is None):
        raise ValidationFailed(
            details=[{"field": "house_id", "message": "give exactly one of house_id or pv_park_id"}]
        )
    if device.pv_park_id is not None and device.kind != "pv":
        raise ValidationFailed(details=[{"field": "kind", "message": "PV parks hold pv inverters only"}])


def _device_max_power(value: float) -> float:
    """A device's own plausibility bound on power: positive and at most MAX_POWER_W."""
    limit = services().settings.max_power_w
    if value > limit:
        raise ValueError(f"at most MAX_POWER_W ({limit:g} W); raise MAX_POWER_W for a larger plant")
    return float(value)


def _user_save(user: User, data: dict, creating: bool) -> None:
    if "password" in data and not creating:  # on create, create_user already hashed it
        set_password(user, data["password"])  # the rule of the user's (new) role; ends their sessions


def _coordinates_paired(obj, data: dict, creating: bool) -> None:
    """A latitude without its longitude would be read with another place's (dashboard/places.py)."""
    if (obj.latitude is None) != (obj.longitude is None):
        missing = "longitude" if obj.longitude is None else "latitude"
        raise ValidationFailed(
            details=[{"field": missing, "message": "give latitude and longitude together"}]
        )


# A house's or community's place: NULL (or omitted) means the community's, else the environment's default.
PLACE_FIELDS = {
    "timezone": Field(str, convert=check_timezone, description="IANA time zone, e.g. Europe/Athens"),
    "country": Field(str, convert=check_country,
                     description="public holidays: ISO 3166-1 alpha-2 (GR) or ISO 3166-2 subdivision (AU-VIC)"),
    "latitude": Field((int, float), schema_type="number", convert=check_latitude, description="degrees north"),
    "longitude": Field((int, float), schema_type="number", convert=check_longitude, description="degrees east"),
}  # fmt: skip


def _place_json(obj) -> dict:
    return {
        "timezone": obj.timezone,
        "country": obj.country,
        "latitude": obj.latitude,
        "longitude": obj.longitude,
    }


def _ids(objs) -> list[int]:
    return sorted(o.id for o in objs)


RESOURCES = [
    Resource(
        "houses",
        House,
        {
            "name": Field(
                str, required=True, convert=personal_text, description="personal data: encrypted at rest"
            ),
            "address": Field(
                str,
                max_length=255,
                convert=personal_text,
                description="postal address (personal data: encrypted at rest)",
            ),
        }
        | PLACE_FIELDS
        | {
            "share_with_third_parties": Field(
                bool,
                schema_type="boolean",
                description="the owner's consent to per-house rows for third-party apps (default false)",
            )
        },  # fmt: skip
        lambda h: (
            {"id": h.id, "name": h.name, "address": h.address, "community_ids": _ids(h.communities)}
            | _place_json(h)
            | {"share_with_third_parties": bool(h.share_with_third_parties)}
        ),
        _house_visible,
        before_save=_coordinates_paired,
        relations={"community_ids": ("communities", Community)},
    ),
    Resource(
        "devices",
        Device,
        {
            "serial": Field(str, description="the id readings name; generated when absent"),
            # answers name the serial `device_id` (as readings do): a create or patch may too
            "device_id": Field(
                str, alias_of="serial", description="the same as serial (both given: they must agree)"
            ),
            "name": Field(str, required=True),
            "kind": Field(str, required=True, choices=DEVICE_KINDS),
            "direction": Field(str, choices=DIRECTIONS),
            "house_id": Field(int, schema_type="integer"),
            "pv_park_id": Field(int, schema_type="integer"),
            "pv_id": Field(int, schema_type="integer"),
            "max_power_w": Field(
                (int, float),
                positive=True,
                schema_type="number",
                convert=_device_max_power,
                description="optional bound of its readings' power (W); null: MAX_POWER_W",
            ),
        },
        lambda d: {
            "id": d.id,
            "device_id": d.serial,
            "name": d.name,
            "kind": d.kind,
            "direction": d.direction,
            "house_id": d.house_id,
            "pv_park_id": d.pv_park_id,
            "pv_id": d.pv_id,
            "max_power_w": d.max_power_w,
        },
        # Consumers see their houses' devices, never PV-park inverters.
        lambda scope: true() if scope.all_houses else Device.house_id.in_(scope.house_ids),
        before_save=_device_defaults,
    ),
    Resource(
        "communities",
        Community,
        {"name": Field(str, required=True)} | PLACE_FIELDS,
        # Third-party apps learn a community's size and calendar, never which houses are in it nor where.
        lambda c, scope=None: (
            {"id": c.id, "name": c.name, "house_count": len(c.houses)}
            | (
                {"timezone": c.timezone, "country": c.country}
                if scope is not None and scope.role == "third_party"
                else {"house_ids": _ids(c.houses)} | _place_json(c)
            )
        ),
        # third-party apps: only communities of at least MIN_AGGREGATE_HOUSES houses exist (docs/privacy.md)
        lambda scope: community_visible(scope, services().settings.min_aggregate_houses),
        read_permission="communities:read",
        before_save=_coordinates_paired,
        relations={"house_ids": ("houses", House)},
    ),
    Resource(
        "pv-parks",
        PVPark,
        {
            "name": Field(str, required=True),
            "community_id": Field(int, schema_type="integer"),
            "capacity_kw": Field((int, float), required=True, positive=True, schema_type="number"),
        },
        lambda p: {
            "id": p.id,
            "name": p.name,
            "community_id": p.community_id,
            "capacity_kw": p.capacity_kw,
        },
        lambda scope: true() if scope.all_houses else false(),
    ),
    Resource(
        "pvs",
        PV,
        {
            "house_id": Field(int, required=True, schema_type="integer"),
            "name": Field(str, required=True),
            "capacity_kwp": Field((int, float), required=True, positive=True, schema_type="number"),
        },
        lambda p: {"id": p.id, "house_id": p.house_id, "name": p.name, "capacity_kwp": p.capacity_kwp},
        _by_house(PV.house_id),
    ),
    Resource(
        "users",
        User,
        {
            "username": Field(str, required=True),
            "password": Field(str),
            "role": Field(str, required=True, choices=ROLES),
            "is_active": Field(bool, schema_type="boolean"),
            "full_name": Field(
                str, max_length=200, convert=personal_text, description="personal data: encrypted at rest"
            ),
            "email": Field(
                str,
                max_length=254,
                convert=check_email,
                format="email",
                description="contact address (personal data: encrypted at rest)",
            ),
        },
        lambda u: {
            "id": u.id,
            "username": u.username,
            "role": u.role,
            "is_active": u.is_active,
            "full_name": u.full_name,
            "email": u.email,
            "house_ids": _ids(u.houses),
            "community_ids": _ids(u.communities),
        },
        lambda scope: true(),
        read_permission="users:read",
        write_permission="users:write",
        before_save=_user_save,
        relations={"house_ids": ("houses", House), "community_ids": ("communities", Community)},
    ),
]


def _apply(resource: Resource, obj: Any, data: dict) -> None:
    session = db()
    for name in resource.fields:
        if name in data and name != "password":
            setattr(obj, name, data[name])
    for name, (attribute, model) in resource.relations.items():
        if name in data:
            related = [session.get(model, i) for i in data[name]]
            missing = [i for i, r in zip(data[name], related, strict=True) if r is None]
            if missing:
                raise ValidationFailed(details=[{"field": name, "message": f"unknown ids {missing}"}])
            setattr(obj, attribute, related)


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
    """Commit; `last` runs after everything else is flushed, just before the commit."""
    try:
        if last is not None:
            db().flush()
            last()
        db().commit()
    except IntegrityError as exc:
        db().rollback()
        raise Conflict(
            "This conflicts with existing data (a duplicate name or serial, or an unknown reference)"
        ) from exc


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
        data = validate(resource, json_body(), creating=True)
        session = db()
        if resource.model is User:
            obj = create_user(session, data["username"], data.get("password") or "", data["role"])
        else:
            obj = resource.model(created_at=utcnow())
        _apply(resource, obj, data)
        if resource.before_save:
            resource.before_save(obj, data, True)
        session.add(obj)
        _commit_or_conflict()
        return jsonify(_json(resource, obj)), 201

    def update_view(object_id: int):
        obj = _get_visible(resource, object_id)
        data = validate(resource, json_body(), creating=False)
        _apply(resource, obj, data)
        if resource.before_save:
            resource.before_save(obj, data, False)
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
