"""Analytics over HTTP: anomalies, EN 50160 voltage events, power-factor trends and load profiles.

Thin faces over `dashboard.analytics`: each route hands the caller's server-side Scope to the service,
which filters in SQL and checks a client's `house_id` against the scope (another house is 404, a
third-party app asking for one house is 403). Local days use `Settings.timezone`. The scan of every house
runs as a background job (jobs/analytics.py), as on the Analytics page.
"""

from __future__ import annotations

import math
from datetime import datetime

from flask import Blueprint, jsonify, request

from dashboard import analytics
from dashboard.api.common import current_scope, int_param, requires, time_param
from dashboard.api.openapi import responds
from dashboard.clock import iso_utc
from dashboard.context import db, services
from dashboard.errors import Forbidden, NotFound, ServiceUnavailable, ValidationFailed
from dashboard.jobqueue import JobNotFound
from jobs import analytics as scans

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


# ---- the all-houses scan, in the background ---------------------------------------------------------


@bp.post("/scans")
@responds(202)
@requires("analytics:read", query={"start": RANGE_QUERY["start"], "end": RANGE_QUERY["end"]})
def start_scan():
    """Queue the scan of every house in your scope (anomalies, voltage events, power factor) as one
    background job, or reuse the one queued for the same range in the last minutes; poll the status URL."""
    scope = current_scope()
    if scope.user_id is None:
        raise Forbidden("The background scan is for logged-in users")
    start, end = analytics.check_range(time_param("start"), time_param("end"))
    scan = scans.Scan(scope, start, end, services().settings.timezone)
    try:
        job_id = scans.start_scan(services(), scan)
    except Exception as exc:  # the queue (Redis) is unreachable
        raise ServiceUnavailable("The job queue is unavailable; try again shortly") from exc
    return jsonify({"job_id": job_id, "status_url": f"/api/v1/analytics/scans/{job_id}"}), 202


@bp.get("/scans/<job_id>")
@requires("analytics:read")
def scan_status(job_id: str):
    """A scan you started: its status and progress, and when finished what it found in your scope."""
    scope = current_scope()
    if not scans.own_scan_id(scope, job_id):
        raise NotFound(f"Scan {job_id} not found")
    try:
        status = services().job_queue.status(job_id)
    except JobNotFound:
        raise NotFound(f"Scan {job_id} not found (finished scans are kept for an hour)") from None
    body = {"job_id": job_id, "status": status.status, "progress": status.progress, "message": status.message}
    if status.status == "finished":
        result = status.result if isinstance(status.result, dict) else {}
        asked = scans.Scan(scope, datetime.fromisoformat(result.get("start", "1970-01-01")),
                      datetime.fromisoformat(result.get("end", "1970-01-01")), result.get("timezone", ""))  # fmt: skip
        found = scans.scan_result(asked, status) if scans.scan_of(asked, job_id) else None
        if found is None:  # your scope changed since, or the job is not a scan of yours
            raise NotFound(f"Scan {job_id} is not a scan of your current scope: start a new one")
        body |= {"start": iso_utc(asked.start), "end": iso_utc(asked.end), "anomalies": found["events"],
                 "voltage_events": found["voltage"], "power_factor": found["power_factor"],
                 "errors": found["errors"]}  # fmt: skip
    return jsonify(body)
