"""Analytics over HTTP: anomalies, EN 50160 voltage events, power-factor trends and load profiles.

Thin faces over `dashboard.analytics`: each route hands the caller's server-side Scope to the service,
which filters in SQL and checks a client's `house_id` against the scope (another house is 404, a
third-party app asking for one house is 403). Local days use `Settings.timezone`.
"""

from __future__ import annotations

import math

from flask import Blueprint, jsonify, request

from dashboard import analytics
from dashboard.api.common import current_scope, int_param, requires, time_param
from dashboard.context import db, services
from dashboard.errors import ValidationFailed

bp = Blueprint("analytics", __name__, url_prefix="/api/v1/analytics")

RANGE_QUERY = {
    "start": "ISO 8601 with offset, inclusive",
    "end": "ISO 8601 with offset, exclusive (at most 366 days after start)",
    "house_id": "optional: one of your houses (default: every house you may see)",
}


def float_param(name: str, default: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationFailed(details=[{"field": name, "message": "must be a number"}]) from None
    if not math.isfinite(value):
        raise ValidationFailed(details=[{"field": name, "message": "must be a finite number"}])
    return value


def _house_id() -> int | None:
    return int_param("house_id", request.args.get("house_id"))


@bp.get("/anomalies")
@requires("analytics:read", query=RANGE_QUERY)
def get_anomalies():
    """Consumption anomalies (spikes, night load, stuck meters) per house, judged against its own history."""
    start, end, house_id = time_param("start"), time_param("end"), _house_id()
    events = analytics.anomalies(
        db(), current_scope(), start, end, house_id=house_id, timezone=services().settings.timezone
    )
    return jsonify({"anomalies": events})


@bp.get("/voltage-events")
@requires(
    "analytics:read",
    query=RANGE_QUERY | {"nominal_v": "optional: nominal voltage Un in V (default 230)"},
)
def get_voltage_events():
    """EN 50160 voltage events of house meters: sags (< 0.9 Un), swells (> 1.1 Un), interruptions."""
    start, end, house_id = time_param("start"), time_param("end"), _house_id()
    nominal_v = float_param("nominal_v", 230.0)
    return jsonify(
        analytics.voltage_events(db(), current_scope(), start, end, house_id=house_id, nominal_v=nominal_v)
    )


@bp.get("/power-factor")
@requires("analytics:read", query=RANGE_QUERY)
def get_power_factor():
    """Daily time-weighted mean power factor and share of time below 0.9, per house and local day."""
    start, end, house_id = time_param("start"), time_param("end"), _house_id()
    days = analytics.power_factor_trend(
        db(), current_scope(), start, end, house_id=house_id, timezone=services().settings.timezone
    )
    return jsonify({"days": days})


@bp.get("/load-profile")
@requires("analytics:read", query=RANGE_QUERY)
def get_load_profile():
    """Average daily load shape (weekdays, weekends), peak kW and load factor of a house or the scope."""
    start, end, house_id = time_param("start"), time_param("end"), _house_id()
    return jsonify(
        analytics.load_profile(
            db(), current_scope(), start, end, house_id=house_id, timezone=services().settings.timezone
        )
    )
