"""Weather in: one location's hourly observations (admins; a provider fetches the rest, dashboard/weather)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from dashboard.api.common import json_body, requires
from dashboard.context import db, services
from dashboard.errors import ValidationFailed
from dashboard.weather.observations import validate_coordinates, validate_observations
from dashboard.weather.store import store_observations

bp = Blueprint("weather", __name__, url_prefix="/api/v1")

OBSERVATION_SCHEMA = {
    "type": "object",
    "required": ["timestamp", "temperature_c"],
    "properties": {
        "timestamp": {
            "type": "string",
            "format": "date-time",
            "description": "start of the hour, with offset",
        },
        "temperature_c": {"type": "number", "minimum": -90, "maximum": 60},
        "irradiance_wm2": {
            "type": "number",
            "minimum": 0,
            "maximum": 1500,
            "description": "mean over the hour",
        },
        "cloud_cover": {"type": "number", "minimum": 0, "maximum": 100, "description": "percent of the sky"},
    },
}
BODY_SCHEMA = {
    "type": "object",
    "required": ["latitude", "longitude", "observations"],
    "properties": {
        "latitude": {"type": "number", "minimum": -90, "maximum": 90},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180},
        "observations": {"type": "array", "items": OBSERVATION_SCHEMA},
    },
}


@bp.post("/weather")
@requires("weather:write", body=BODY_SCHEMA)
def post_weather():
    """Store hourly weather observations at a point: all or nothing, idempotent on (location, hour)."""
    body = json_body()
    unknown = sorted(set(body) - set(BODY_SCHEMA["properties"]))
    problems = [{"field": name, "message": "unknown field; expected latitude, longitude, observations"}
                for name in unknown]  # fmt: skip
    try:
        latitude, longitude = validate_coordinates(body.get("latitude"), body.get("longitude"))
    except ValidationFailed as exc:
        problems += exc.details
    try:
        rows = validate_observations(body.get("observations"), services().settings.max_batch_readings)
    except ValidationFailed as exc:
        problems += exc.details
    if problems:
        raise ValidationFailed(details=problems[:200])
    session = db()
    location, inserted, updated = store_observations(session, latitude, longitude, rows)
    session.commit()
    return jsonify(
        {
            "location": {
                "name": location.name,
                "latitude": location.latitude,
                "longitude": location.longitude,
            },
            "inserted": inserted,
            "updated": updated,
        }
    )
