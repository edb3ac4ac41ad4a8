"""Summary exports over HTTP: CSV (streamed, units in the header names) or JSON, scoped.

The numbers and the scope rules live in `dashboard.exports`; this face parses the query string and
writes the rows out.
"""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, jsonify, request

from dashboard.api.common import current_scope, int_param, requires, time_param
from dashboard.clock import iso_utc, utcnow
from dashboard.context import db, services
from dashboard.costs import cost_columns
from dashboard.errors import ValidationFailed
from dashboard.exports import csv_lines, summary

bp = Blueprint("exports", __name__, url_prefix="/api/v1/exports")

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def bool_param(name: str) -> bool:
    raw = request.args.get(name, "").strip().lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ValidationFailed(details=[{"field": name, "message": "true or false"}])


@bp.get("/summary")
@requires(
    "exports:read",
    query={
        "period": "daily | weekly | monthly (local days; ISO weeks, Monday first; calendar months)",
        "start": "ISO 8601 with offset: the local day it falls in is the first (whole)",
        "end": "ISO 8601 with offset, exclusive: the local day it falls in is the last (whole) unless it "
        "is a local midnight; at most three years after start",
        "format": "csv (default, streamed attachment) | json",
        "house_id": "optional: one house (not for third-party apps)",
        "community_id": "optional: a community's houses and PV parks",
        "per_house": "optional: true gives one row per house and period (third-party apps: only houses whose "
        "owners consented, under pseudonymous ids)",
    },
)
def get_summary():
    """Summary statistics per day, week or month: energy (kWh), average and peak power (kW), voltage
    event intervals and mean power factor."""
    period = request.args.get("period", "")
    output = request.args.get("format", "csv")
    if output not in ("csv", "json"):
        raise ValidationFailed(details=[{"field": "format", "message": "csv or json"}])
    start, end = time_param("start"), time_param("end")
    settings = services().settings
    scope = current_scope()
    house_id = int_param("house_id", request.args.get("house_id"))
    community_id = int_param("community_id", request.args.get("community_id"))
    result = summary(
        db(),
        scope,
        period,
        start,
        end,
        timezone=settings.timezone,
        secret_key=settings.secret_key,
        house_id=house_id,
        community_id=community_id,
        per_house=bool_param("per_house"),
        min_houses=settings.min_aggregate_houses,
    )
    # grid import/export, cost and CO2 columns where a tariff or intensity is set (dashboard/costs.py)
    lacking = cost_columns(db(), scope, result, settings, utcnow(), house_id, community_id)
    if output == "json":
        return jsonify(
            {
                "period": result.period,
                "timezone": result.timezone,
                "start": iso_utc(result.start),  # the range the rows cover: whole local days
                "end": iso_utc(result.end),
                "per_house": result.per_house,
                "pseudonymous_house_ids": result.pseudonymous,
                "columns": result.columns,
                "rows": result.rows,
            }
            | ({"houses_without_tariff": lacking} if lacking is not None else {})
        )
    zone = ZoneInfo(settings.timezone)  # the file is named by local dates, like its rows
    first, last = (t.replace(tzinfo=UTC).astimezone(zone) for t in (result.start, result.end))
    suffix = "_per_house" if result.per_house else ""
    name = f"summary_{result.period}_{first:%Y%m%d}_{last:%Y%m%d}{suffix}.csv"
    return Response(
        csv_lines(result),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
