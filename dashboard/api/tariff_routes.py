"""Tariffs per house (CRUD), the grid's hourly carbon intensity, and cost and CO2 per hour or local day.

Validation and storage live in dashboard/tariffs.py, the computation in dashboard/costs.py; a house outside
the caller's scope answers 404 like a missing one, and third-party apps are refused (role matrix).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from dashboard.api.common import current_scope, int_param, json_body, requires, time_param
from dashboard.api.openapi import responds
from dashboard.clock import iso_utc, utcnow
from dashboard.context import db, services
from dashboard.costs import GROUPS, compute, scope_houses
from dashboard.errors import ValidationFailed
from dashboard.queries import whole_buckets
from dashboard.readings import parse_timestamp
from dashboard.tariffs import (
    create_tariff,
    delete_tariff,
    get_tariff,
    list_tariffs,
    store_intensity,
    tariff_json,
    update_tariff,
    validate_intensity,
)

bp = Blueprint("tariffs", __name__, url_prefix="/api/v1")

PRICE = {"type": "number", "description": "per kWh, in CURRENCY"}
PERIOD = {
    "type": "object",
    "required": ["start", "end", "import_price"],
    "properties": {
        "days": {"type": "string", "enum": ["all", "weekday", "weekend"], "description": "default all"},
        "start": {"type": "string", "description": "local whole hour, HH:00"},
        "end": {
            "type": "string",
            "description": "local whole hour HH:00 (24:00 = midnight); before start wraps",
        },
        "import_price": PRICE,
    },
}
TARIFF = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["flat", "tou"]},
        "import_price": PRICE | {"description": "flat tariffs: per kWh imported, in CURRENCY"},
        "export_price": PRICE | {"description": "optional feed-in price per kWh exported, in CURRENCY"},
        "standing_charge_per_day": {"type": "number", "description": "optional, per local day, in CURRENCY"},
        "valid_from": {"type": "string", "format": "date", "description": "first local day"},
        "valid_to": {
            "type": "string",
            "format": "date",
            "description": "last local day (included); null: open",
        },
        "periods": {
            "type": "array",
            "items": PERIOD,
            "description": "time of use: covering every hour of weekdays and weekends exactly once",
        },
    },
}
INTENSITY = {
    "type": "object",
    "required": ["values"],
    "properties": {
        "values": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hour", "g_per_kwh"],
                "properties": {
                    "hour": {
                        "type": "string",
                        "format": "date-time",
                        "description": "start of the hour, with offset",
                    },
                    "g_per_kwh": {"type": "number", "minimum": 0},
                },
            },
        }
    },
}


@bp.get("/houses/<int:house_id>/tariffs")
@requires("tariffs:read")
def get_tariffs(house_id: int):
    """A house's tariffs, oldest first."""
    return jsonify([tariff_json(t) for t in list_tariffs(db(), current_scope(), house_id)])


@bp.post("/houses/<int:house_id>/tariffs")
@requires("tariffs:write", body=TARIFF | {"required": ["kind", "valid_from"]})
@responds(201)
def post_tariff(house_id: int):
    """Add a tariff to a house (409 when its days overlap another of the house's tariffs)."""
    session = db()
    tariff = create_tariff(session, current_scope(), house_id, json_body())
    session.commit()
    return jsonify(tariff_json(tariff)), 201


@bp.get("/houses/<int:house_id>/tariffs/<int:tariff_id>")
@requires("tariffs:read")
def get_one_tariff(house_id: int, tariff_id: int):
    """One tariff of a house."""
    return jsonify(tariff_json(get_tariff(db(), current_scope(), house_id, tariff_id)))


@bp.patch("/houses/<int:house_id>/tariffs/<int:tariff_id>")
@requires("tariffs:write", body=TARIFF)
def patch_tariff(house_id: int, tariff_id: int):
    """Change a tariff; ending it is setting valid_to (the last local day it applies)."""
    session = db()
    tariff = update_tariff(session, current_scope(), house_id, tariff_id, json_body())
    session.commit()
    return jsonify(tariff_json(tariff))


@bp.delete("/houses/<int:house_id>/tariffs/<int:tariff_id>")
@requires("tariffs:write")
def remove_tariff(house_id: int, tariff_id: int):
    """Delete a tariff (costs of its days are then not computed)."""
    session = db()
    delete_tariff(session, current_scope(), house_id, tariff_id)
    session.commit()
    return "", 204


@bp.post("/grid-intensity")
@requires("grid_intensity:write", body=INTENSITY)
def post_grid_intensity():
    """Store the grid's carbon intensity per hour (g CO2/kWh): all or nothing, idempotent on the hour."""
    body = json_body()
    unknown = sorted(set(body) - {"values"})
    if unknown:
        raise ValidationFailed(
            details=[{"field": n, "message": "unknown field; expected values"} for n in unknown]
        )
    rows = validate_intensity(body.get("values"), parse_timestamp, services().settings.max_batch_readings)
    session = db()
    inserted, updated = store_intensity(session, rows)
    session.commit()
    return jsonify({"inserted": inserted, "updated": updated})


def _number(value: float | None) -> float | None:
    return None if value is None else value + 0.0


def bucket_json(bucket) -> dict:
    return {
        "import_kwh": bucket.import_kwh,
        "export_kwh": bucket.export_kwh,
        "energy_cost": _number(bucket.energy_cost),
        "feed_in_credit": _number(bucket.feed_in_credit),
        "standing_charge": _number(bucket.standing_charge),
        "cost": _number(bucket.cost),
        "co2_kg": _number(bucket.co2_kg),
    }


@bp.get("/cost")
@requires(
    "cost:read",
    query={
        "start": "ISO 8601 with offset (floored to the hour)",
        "end": "ISO 8601 with offset, exclusive (at most 3 years after start)",
        "resolution": "hour (default) | day (local days, whole)",
        "house_id": "optional: one house",
        "community_id": "optional: a community's houses in your scope",
    },
)
def get_cost():
    """Cost (grid import x its price - export x feed-in + standing charge) and CO2 of import, per bucket."""
    scope, session, settings = current_scope(), db(), services().settings
    resolution = request.args.get("resolution", "hour")
    if resolution not in GROUPS:
        raise ValidationFailed(details=[{"field": "resolution", "message": "hour or day"}])
    start, end = time_param("start"), time_param("end")
    if end <= start or (end - start).days > 3 * 366:
        raise ValidationFailed(
            details=[{"field": "end", "message": "after start, at most three years later"}]
        )
    houses = scope_houses(
        session,
        scope,
        int_param("house_id", request.args.get("house_id")),
        int_param("community_id", request.args.get("community_id")),
    )
    start, end = whole_buckets(resolution, start, end, settings.timezone)  # whole hours or local days
    result = compute(session, houses, start, end, settings.timezone, settings.currency,
                     settings.grid_co2_g_per_kwh, utcnow(), group=resolution)  # fmt: skip
    body = {
        "currency": settings.currency,
        "resolution": resolution,
        "start": iso_utc(start),
        "end": iso_utc(end),
    }
    if result is None:
        return jsonify(body | {"houses_with_tariff": 0, "has_tariff": False, "has_co2": False, "total": None,
                               "series": []})  # fmt: skip
    return jsonify(
        body
        | {
            "houses": result.houses,
            "houses_with_tariff": result.houses_with_tariff,
            "houses_without_tariff": result.houses_without_tariff,
            "has_tariff": result.has_tariff,
            "has_co2": result.has_co2,
            "total": bucket_json(result.total()),
            "series": [{"timestamp": iso_utc(k)} | bucket_json(b) for k, b in sorted(result.buckets.items())],
        }
    )
