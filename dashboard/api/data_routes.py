"""Measurements in (ingestion) and energy and raw readings out, all scoped."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from dashboard.api.common import current_scope, int_param, json_body, requires, time_param
from dashboard.clock import iso_utc
from dashboard.context import db, services
from dashboard.errors import Forbidden, ValidationFailed
from dashboard.ingest import ingest_readings, replace_readings
from dashboard.policy import REPLACES_READINGS
from dashboard.privacy import check_aggregate
from dashboard.queries import energy_series, raw_measurements, whole_buckets
from dashboard.readings import Bounds, validate_batch

bp = Blueprint("data", __name__, url_prefix="/api/v1")

READING_SCHEMA = {
    "type": "object",
    "required": ["device_id", "timestamp", "power_w"],
    "properties": {
        "device_id": {"type": "string", "description": "the device's serial"},
        "timestamp": {"type": "string", "format": "date-time", "description": "interval start, with offset"},
        "power_w": {"type": "number", "minimum": 0},
        "energy_wh": {"type": "number", "minimum": 0, "description": "energy since the previous reading"},
        "voltage_v": {"type": "number", "minimum": 0, "maximum": 1000},
        "current_a": {"type": "number", "minimum": 0},
        "power_factor": {"type": "number", "minimum": -1, "maximum": 1},
    },
}


@bp.post("/measurements")
@requires(
    "measurements:write",
    query={
        "replace": "optional, admins (any device) and gateway keys (their houses' devices) only: true "
        "overwrites the stored readings at the same device and timestamp (a correction) and adjusts every "
        "rollup they touched; the access log records it",
    },
    body={
        "type": "object",
        "required": ["measurements"],
        "properties": {"measurements": {"type": "array", "items": READING_SCHEMA}},
    },
)
def post_measurements():
    """Ingest a batch of readings: all or nothing, idempotent on (device, timestamp). With `replace=true`
    (admins; gateway keys for their houses' devices): overwrite stored readings and adjust the rollups."""
    settings = services().settings  # bodies over MAX_CONTENT_LENGTH were already refused with 413
    replace = request.args.get("replace", "").strip().lower()
    if replace not in ("", "true", "false", "1", "0"):
        raise ValidationFailed(details=[{"field": "replace", "message": "true or false"}])
    scope = current_scope()
    if replace in ("true", "1") and scope.role not in REPLACES_READINGS:
        raise Forbidden(
            "Only admins and gateway keys may replace stored readings (replace=true); send new readings "
            "without it"
        )
    body = json_body()
    bounds = Bounds(settings.max_power_w, settings.derive_energy_max_gap_s)
    readings = validate_batch(body.get("measurements"), settings.max_batch_readings, bounds=bounds,
                              retention_days=settings.raw_retention_days)  # fmt: skip
    session = db()
    if replace in ("true", "1"):
        result = replace_readings(
            session, scope, readings, settings.timezone, settings.derive_energy_max_gap_s
        )
        session.commit()
        g.access_note = f"replace: {result.replaced} replaced, {result.inserted} inserted"
        return jsonify({"accepted": result.inserted + result.replaced, "inserted": result.inserted,
                        "replaced": result.replaced, "unchanged": result.unchanged})  # fmt: skip
    result = ingest_readings(
        session, current_scope(), readings, settings.timezone, settings.derive_energy_max_gap_s
    )
    session.commit()
    return jsonify({"accepted": result.accepted, "duplicates": result.duplicates})


@bp.get("/energy")
@requires(
    "energy:read",
    query={
        "resolution": "15min | hour | day (day buckets start at local midnight)",
        "start": "ISO 8601 with offset, inclusive; widened down to the start of its bucket",
        "end": "ISO 8601 with offset, exclusive; widened up to the end of its bucket",
        "house_id": "optional: one house (not for third-party apps)",
        "community_id": "optional: a community's houses and PV parks",
    },
)
def get_energy():
    """Consumption, production and net energy (kWh) per bucket from the rollups. Every bucket the range
    touches counts whole (a day from local midnight to local midnight); `start`/`end` in the answer are
    the range the buckets cover."""
    resolution = request.args.get("resolution", "hour")
    if resolution not in ("15min", "hour", "day"):
        raise ValidationFailed(details=[{"field": "resolution", "message": "one of 15min, hour, day"}])
    start, end = whole_buckets(
        resolution, time_param("start"), time_param("end"), services().settings.timezone
    )
    house_id = int_param("house_id", request.args.get("house_id"))
    community_id = int_param("community_id", request.args.get("community_id"))
    scope = current_scope()
    series = energy_series(db(), scope, resolution, start, end, house_id=house_id, community_id=community_id)
    # third parties: no aggregate of fewer than MIN_AGGREGATE_HOUSES houses (after the input's own checks)
    k = services().settings.min_aggregate_houses
    check_aggregate(db(), scope, k, community_id, resolution, start, end)
    return jsonify({"resolution": resolution, "start": iso_utc(start), "end": iso_utc(end), "series": series})


@bp.get("/measurements")
@requires(
    "measurements:read",
    query={
        "device_id": "the device's serial",
        "start": "ISO 8601 with offset, inclusive",
        "end": "ISO 8601 with offset, exclusive",
    },
)
def get_measurements():
    """Raw readings of one device (at most 50,000 per request)."""
    serial = request.args.get("device_id")
    if not serial:
        raise ValidationFailed(details=[{"field": "device_id", "message": "is required"}])
    rows = raw_measurements(db(), current_scope(), serial, time_param("start"), time_param("end"))
    return jsonify({"device_id": serial, "measurements": rows})
