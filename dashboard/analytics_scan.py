"""Every house of a scope, a batch of houses at a time: the Analytics page's background scan.

One request over a large scope would hold every house's frame at once and could pass the raw-readings
limit; in batches, memory stays bounded and progress is reported after each. The answers are those of
one `dashboard.analytics` call per section for the whole scope, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from dashboard.analytics import (
    ANOMALY_HISTORY,
    DEFAULT_TIMEZONE,
    TooManyReadings,
    anomalies,
    check_range,
    power_factor_trend,
    require_per_house,
    scope_houses,
    voltage_events,
    voltage_thresholds,
)
from dashboard.analytics_anomalies import AnomalyConfig
from dashboard.errors import ValidationFailed
from dashboard.scope import Scope

BATCH_HOUSES = 20  # houses read and judged together
MAX_BATCH_ROWS = 400_000  # ... fewer on long ranges: at most this many 15-minute rows per batch


def _batch_size(start: datetime, end: datetime, batch_houses: int) -> int:
    """Houses per batch: `batch_houses`, fewer when their rollups (the anomalies' read) would pass
    MAX_BATCH_ROWS."""
    rows_per_house = (end - start + ANOMALY_HISTORY) / timedelta(minutes=15)
    return max(1, min(batch_houses, int(MAX_BATCH_ROWS // max(rows_per_house, 1))))


def anomalies_in_batches(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    timezone: str = DEFAULT_TIMEZONE,
    config: AnomalyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_houses: int = BATCH_HOUSES,
) -> list[dict]:
    """`anomalies()` of every house in the scope, read and judged a batch of houses at a time (bounded
    memory on long ranges, and a progress report after each batch: `progress(houses done, houses)`).
    The same events in the same order as one `anomalies()` call: a house's events never depend on
    another house."""
    start, end = check_range(start, end)
    require_per_house(scope, None)
    houses = scope_houses(session, scope)
    size = _batch_size(start, end, batch_houses)
    events: list[dict] = []
    if progress is not None:
        progress(0, len(houses))
    for i in range(0, len(houses), size):
        chunk = houses[i : i + size]
        events += anomalies(session, scope, start, end, timezone=timezone, config=config, houses=chunk)
        if progress is not None:
            progress(i + len(chunk), len(houses))
    return sorted(events, key=lambda e: (e["start"], e["house_id"]))  # stable: a house keeps its order


def _split_on_limit(read: Callable[[list[int]], object], chunk: list[int]) -> list:
    """`read(chunk)` for a batch of houses, halved while the batch holds more raw readings than one request
    may read (denser meters than the usual 15 minutes); one house over the limit raises TooManyReadings."""
    try:
        return [read(chunk)]
    except TooManyReadings:
        if len(chunk) == 1:
            raise
        mid = len(chunk) // 2
        return _split_on_limit(read, chunk[:mid]) + _split_on_limit(read, chunk[mid:])


def _limit_text(exc: ValidationFailed) -> str:
    return "; ".join(d.get("message", "") for d in (exc.details or [])) or str(exc)


def scan_in_batches(
    session: Session,
    scope: Scope,
    start: datetime,
    end: datetime,
    timezone: str = DEFAULT_TIMEZONE,
    nominal_v: float = 230.0,
    config: AnomalyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_houses: int = BATCH_HOUSES,
) -> dict:
    """Anomalies, EN 50160 voltage events and the power-factor trend of every house in the scope, read a
    batch of houses at a time (each batch's raw readings within MAX_ANALYTICS_ROWS, however long the
    scope; a progress report after each batch: `progress(houses done, houses)`).

    Returns {"anomalies": as `anomalies()`, "voltage": as `voltage_events()`, "power_factor": as
    `power_factor_trend()`, "errors": {section: text}}: the same answers, in the same order, as one call
    of each for the whole scope (a house's results never depend on another house). A section whose
    single house holds more raw readings than a request may read is None, with its error text.
    """
    start, end = check_range(start, end)
    require_per_house(scope, None)
    if nominal_v <= 0:
        raise ValidationFailed(details=[{"field": "nominal_v", "message": "must be > 0"}])
    houses = scope_houses(session, scope)
    size = _batch_size(start, end, batch_houses)
    events: list[dict] = []
    thresholds = voltage_thresholds(nominal_v)
    voltage: dict | None = {"nominal_v": nominal_v, "thresholds_v": thresholds, "events": [], "summary": []}
    days: list[dict] | None = []
    errors: dict[str, str] = {}
    if progress is not None:
        progress(0, len(houses))
    for i in range(0, len(houses), size):
        chunk = houses[i : i + size]
        events += anomalies(session, scope, start, end, timezone=timezone, config=config, houses=chunk)
        if voltage is not None:
            try:
                for part in _split_on_limit(
                    lambda c: voltage_events(session, scope, start, end, nominal_v=nominal_v, houses=c), chunk
                ):
                    voltage["events"] += part["events"]
                    voltage["summary"] += part["summary"]
            except TooManyReadings as exc:
                voltage, errors["voltage"] = None, _limit_text(exc)
        if days is not None:
            try:
                for part in _split_on_limit(
                    lambda c: power_factor_trend(session, scope, start, end, timezone=timezone, houses=c),
                    chunk,
                ):
                    days += part
            except TooManyReadings as exc:
                days, errors["power_factor"] = None, _limit_text(exc)
        if progress is not None:
            progress(i + len(chunk), len(houses))
    if voltage is not None:  # each batch's events are in order; summaries and days follow the houses
        voltage["events"].sort(key=lambda e: (e["start"], e["house_id"], e["device"]))
    return {
        "anomalies": sorted(events, key=lambda e: (e["start"], e["house_id"])),
        "voltage": voltage,
        "power_factor": days,
        "errors": errors,
    }
