"""The metadata resources (houses, devices, communities, PV parks, PVs, users) described as data, and their
writes: validation (dashboard/resources.py), defaults and cross-field rules, in one place for every face:
the REST API (dashboard/api/metadata_routes.py) and the Admin page (callbacks/admin_resources.py).

Personal fields (a house's name and address, a user's full name and e-mail) are set through the models,
which encrypt them at rest (dashboard/fieldcrypt.py).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import false, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.auth import create_user, set_password
from dashboard.clock import utcnow
from dashboard.config import check_country, check_latitude, check_longitude, check_timezone
from dashboard.context import services
from dashboard.errors import Conflict, NotFound, ValidationFailed
from dashboard.metering import LayoutChange
from dashboard.policy import ROLES
from dashboard.privacy import community_visible
from dashboard.resources import Field, Resource, validate
from dashboard.rollups import delete_rollups_of, subtract_from_fleet
from dashboard.schema import DEVICE_KINDS, DIRECTIONS, PV, Community, Device, House, PVPark, User
from dashboard.scope import Scope
from dashboard.untrusted import check_email, personal_text


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


def apply(session: Session, resource: Resource, obj: Any, data: dict) -> None:
    """Set a validated body's fields and relations on `obj` (unknown related ids: ValidationFailed)."""
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


BY_NAME = {r.name: r for r in RESOURCES}


def resource_named(name) -> Resource:
    """The resource called `name` (houses, devices, communities, pv-parks, pvs, users); NotFound else."""
    found = BY_NAME.get(name) if isinstance(name, str) else None
    if found is None:
        raise NotFound(f"No resource {str(name)[:40]!r}; one of {', '.join(BY_NAME)}")
    return found


def create_record(session: Session, resource: Resource, body: dict) -> Any:
    """Validate `body` (every problem at once) and add the new record, flushed, not committed: the caller
    commits (`commit_or_conflict`) or rolls back, so an error writes nothing."""
    data = validate(resource, body, creating=True)
    if resource.model is User:
        obj = create_user(session, data["username"], data.get("password") or "", data["role"])
    else:
        obj = resource.model(created_at=utcnow())
    change = _layout_change(session, resource, obj, data)
    apply(session, resource, obj, data)
    if resource.before_save:
        resource.before_save(obj, data, True)
    session.add(obj)
    _flush(session)
    _fold(session, change)
    return obj


def update_record(session: Session, resource: Resource, obj: Any, body: dict) -> Any:
    """Validate a partial `body` and apply it to `obj` (flushed, not committed; see create_record)."""
    data = validate(resource, body, creating=False)
    change = _layout_change(session, resource, obj, data)
    apply(session, resource, obj, data)
    if resource.before_save:
        resource.before_save(obj, data, False)
    _flush(session)
    _fold(session, change)
    return obj


def _layout_change(session: Session, resource: Resource, obj: Any, data: dict) -> LayoutChange | None:
    """A device write may change what its house's (or park's) devices add to the rollups: note them first
    (the old house and park and the new ones; dashboard/metering.py)."""
    if resource.model is not Device:
        return None
    houses = (getattr(obj, "house_id", None), data.get("house_id", getattr(obj, "house_id", None)))
    parks = (getattr(obj, "pv_park_id", None), data.get("pv_park_id", getattr(obj, "pv_park_id", None)))
    return LayoutChange(session, houses, parks)


def _fold(session: Session, change: LayoutChange | None) -> None:
    """After the write: the rollups follow it, in its transaction (the fleet's rows last)."""
    if change is not None:
        subtract_from_fleet(session, change.fold(session, services().settings.timezone))


def delete_device(session: Session, device: Device) -> list[dict]:
    """Delete a device (its readings go with it), folding its readings out of its house's or park's rollups
    and its siblings' again under the house's new layout. Returns the fleet's rows of the change, for
    `subtract_from_fleet` just before the commit."""
    change = LayoutChange(session, [device.house_id], [device.pv_park_id])
    fleet = change.fold(session, services().settings.timezone, gone=device.id)
    delete_rollups_of(session, device)  # its own rollups (appliances, export meters), also before pruning
    session.delete(device)
    return fleet


CONFLICT = "This conflicts with existing data (a duplicate name or serial, or an unknown reference)"


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(CONFLICT) from exc


def commit_or_conflict(session: Session, last=None) -> None:
    """Commit; `last` runs after everything else is flushed, just before the commit. A broken unique or
    foreign key (also at the flush) is a Conflict, with everything rolled back."""
    try:
        session.flush()
        if last is not None:
            last()
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(CONFLICT) from exc


# ---- the Admin page's forms -------------------------------------------------------------------------------

# fields that name another record: the form offers those records (field -> model)
REFERENCES = {"house_id": House, "pv_park_id": PVPark, "pv_id": PV, "community_id": Community}


def record_label(obj: Any) -> str:
    if isinstance(obj, Device):
        return f"{obj.serial} · {obj.name} (#{obj.id})"
    return f"{obj.name} (#{obj.id})"  # a house's name decrypted by its model


def record_choices(session: Session, model: Any) -> list[dict]:
    """Every record of `model` as a dropdown's options ({label, value: id}), by id."""
    return [
        {"label": record_label(o), "value": o.id} for o in session.scalars(select(model).order_by(model.id))
    ]


def record_values(resource: Resource, obj: Any) -> dict:
    """A record's current values by form field (its fields, then its relations' id lists)."""
    values = {
        name: getattr(obj, name, None)  # a user's password is write-only: no attribute
        for name, spec in resource.fields.items()
        if spec.alias_of is None
    }
    for name, (attribute, _model) in resource.relations.items():
        values[name] = sorted(o.id for o in getattr(obj, attribute))
    return values
