"""One household's energy flow and its comparison with earlier periods (the Household page's numbers).

Per house, so never for third-party apps (403), and a house outside the caller's scope is 404."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, jsonify, request

from dashboard.api.common import current_scope, requires, time_param
from dashboard.clock import iso_utc, utcnow
from dashboard.context import db, services
from dashboard.errors import ValidationFailed
from dashboard.household import appliances, comparison, energy_flow, houses_in_scope, window_bounds
from dashboard.household_periods import PERIODS, check_period, comparison_windows, period_window

bp = Blueprint("household", __name__, url_prefix="/api/v1")
MAX_RANGE = timedelta(days=400)
PERIOD_TEXT = "one of " + ", ".join(PERIODS) + " (local time, up to now)"


def _iso(record: dict) -> dict:
    return {k: iso_utc(v) if k in ("start", "end") else v for k, v in record.items()}


def _window():
    """`period`, or `from` and `to` (ISO 8601 with offset; at most 400 days), never both."""
    period, first, last = request.args.get("period"), time_param("from", False), time_param("to", False)
    if period and (first or last):
        raise ValidationFailed(details=[{"field": "period", "message": "give period or from/to, not both"}])
    if first is None and last is None:
        return period_window(check_period(period or "today"), utcnow(), services().settings.timezone)
    if first is None or last is None:
        field = "from" if first is None else "to"
        raise ValidationFailed(details=[{"field": field, "message": "from and to go together"}])
    if last <= first:
        raise ValidationFailed(details=[{"field": "to", "message": "must be after from"}])
    if last - first > MAX_RANGE:
        raise ValidationFailed(details=[{"field": "to", "message": "at most 400 days after from"}])
    return window_bounds(first, last, "Custom range")


@bp.get("/houses/<int:house_id>/energy-flow")
@requires(
    "household:read",
    query={
        "period": PERIOD_TEXT + "; the default when from/to are absent: today",
        "from": "ISO 8601 with offset, inclusive (15-minute buckets starting in [from, to) count)",
        "to": "ISO 8601 with offset, exclusive",
    },
)
def get_energy_flow(house_id: int):
    """One house's consumption, production, PV used on site, grid import and export, self-consumption and
    self-sufficiency (%), and energy per appliance sub-meter with "other / unmetered"."""
    session, scope = db(), current_scope()
    window = _window()  # the input's own checks first
    houses = houses_in_scope(session, scope, house_id)
    flow, methods = energy_flow(session, houses, window)
    return jsonify(
        {
            "house_id": house_id,
            "start": iso_utc(window.start),
            "end": iso_utc(window.end),
            "label": window.label,
            "grid": methods[house_id],
            **flow.as_dict(),
            **appliances(session, houses, window, flow.consumption),
        }
    )


@bp.get("/houses/<int:house_id>/comparison")
@requires("household:read", query={"period": PERIOD_TEXT + " (default today)"})
def get_comparison(house_id: int):
    """The period's flow beside the previous day, week, month or year and the same period last year, over
    the same elapsed part (up to the same local time, in whole quarter hours), with the change in %."""
    session, scope = db(), current_scope()
    period = check_period(request.args.get("period") or "today")
    houses_in_scope(session, scope, house_id)
    timezone, now = services().settings.timezone, utcnow()
    current = period_window(period, now, timezone, whole_quarters=True)
    result = comparison(session, [house_id], current, comparison_windows(period, now, timezone))
    return jsonify({"house_id": house_id, "period": period} | {k: _iso(v) for k, v in result.items()})
