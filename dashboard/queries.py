"""Scoped read queries. Every function takes the caller's Scope and filters in SQL.

Dashboards and the read API read rollups, never scan raw readings over long ranges, so a request costs
O(points returned), not O(rows stored).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from dashboard.clock import iso_utc
from dashboard.errors import Forbidden, NotFound, ValidationFailed
from dashboard.rollups import FLEET, LocalDayBuckets
from dashboard.schema import PV, Community, Device, EnergyRollup, Measurement, PVPark, community_houses
from dashboard.scope import Scope

RESOLUTION_STEP = {
    "15min": timedelta(minutes=15),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
MAX_BUCKETS = 50_000
MAX_RAW_ROWS = 50_000


def kwh(wh: float) -> float:
    """Wh as kWh to the Wh's millionth. `+ 0.0` turns -0.0 (a float residue rounded, e.g. in a fleet bucket
    after a house's sums were taken out of it) into 0.0."""
    return round(wh / 1000.0, 6) + 0.0


def _check_range(resolution: str, start: datetime, end: datetime) -> None:
    problems = []
    if resolution not in RESOLUTION_STEP:
        problems.append({"field": "resolution", "message": "one of 15min, hour, day"})
    if end <= start:
        problems.append({"field": "end", "message": "must be after start"})
    elif resolution in RESOLUTION_STEP and (end - start) / RESOLUTION_STEP[resolution] > MAX_BUCKETS:
        problems.append(
            {
                "field": "resolution",
                "message": f"more than {MAX_BUCKETS} buckets; use a coarser resolution or a shorter range",
            }
        )
    if problems:
        raise ValidationFailed(details=problems)


def whole_buckets(
    resolution: str, start: datetime, end: datetime, timezone: str
) -> tuple[datetime, datetime]:
    """[start, end) widened to the whole buckets it touches (naive UTC), so a bucket is never cut by a bound
    and silently counted in part. `15min` and `hour` buckets are UTC; `day` buckets start at local
    midnight (DST-aware: a local day lasts 23 or 25 hours). Bad input passes through for
    `energy_series` to refuse."""
    if resolution not in RESOLUTION_STEP or end <= start:
        return start, end
    if resolution == "day":
        zone, midnight = ZoneInfo(timezone), LocalDayBuckets(timezone)
        first, last = midnight(start), midnight(end)
        if last < end:  # the next local midnight
            day = last.replace(tzinfo=UTC).astimezone(zone).date() + timedelta(days=1)
            last = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        return first, last
    step = RESOLUTION_STEP[resolution]
    first, last = (datetime.min + (t - datetime.min) // step * step for t in (start, end))
    return first, last if last == end else last + step


def scope_filter(
    session: Session, scope: Scope, house_id: int | None, community_id: int | None
) -> ColumnElement[bool]:
    """Which rollup entities (houses, PV parks) the request sums over, within the scope."""
    r = EnergyRollup
    if house_id is not None and community_id is not None:
        raise ValidationFailed(
            details=[{"field": "house_id", "message": "give house_id or community_id, not both"}]
        )
    if house_id is not None:
        scope.require_house(house_id)
        return and_(r.entity_kind == "house", r.entity_id == house_id)
    if community_id is not None:
        if not scope.can_see_community(community_id) or session.get(Community, community_id) is None:
            raise NotFound(f"Community {community_id} not found")
        houses = select(community_houses.c.house_id).where(community_houses.c.community_id == community_id)
        parks = select(PVPark.id).where(PVPark.community_id == community_id)
        house_cond = and_(r.entity_kind == "house", r.entity_id.in_(houses))
        if not scope.all_houses:
            house_cond = and_(house_cond, r.entity_id.in_(scope.house_ids))
        return or_(house_cond, and_(r.entity_kind == "pv_park", r.entity_id.in_(parks)))
    if scope.all_houses:
        return r.entity_kind.in_(("house", "pv_park"))
    return and_(r.entity_kind == "house", r.entity_id.in_(scope.house_ids))


def whole_fleet(scope: Scope, house_id: int | None, community_id: int | None) -> bool:
    """Whether a request sums every house and PV park: then the fleet's pre-summed rollups answer it."""
    return house_id is None and community_id is None and scope.all_houses


def fleet_rows() -> ColumnElement[bool]:
    """The fleet's pre-summed rollup rows (dashboard.rollups.FLEET): one per bucket."""
    return and_(EnergyRollup.entity_kind == FLEET[0], EnergyRollup.entity_id == FLEET[1])


def energy_series(
    session: Session,
    scope: Scope,
    resolution: str,
    start: datetime,
    end: datetime,
    house_id: int | None = None,
    community_id: int | None = None,
) -> list[dict]:
    """Consumption, production and net energy (kWh) per bucket in [start, end), naive-UTC bounds.

    Buckets without any reading are omitted (a gap is absent, not zero).
    """
    _check_range(resolution, start, end)
    entities = scope_filter(session, scope, house_id, community_id)  # the scope's checks, always
    r = EnergyRollup
    rows = session.execute(
        select(r.bucket_start, func.sum(r.consumption_wh), func.sum(r.production_wh))
        .where(
            r.resolution == resolution,
            r.bucket_start >= start,
            r.bucket_start < end,
            fleet_rows() if whole_fleet(scope, house_id, community_id) else entities,
        )
        .group_by(r.bucket_start)
        .order_by(r.bucket_start)
    ).all()
    return [
        {
            "timestamp": iso_utc(bucket),
            "consumption_kwh": kwh(cons),
            "production_kwh": kwh(prod),
            "net_kwh": kwh(cons - prod),
        }
        for bucket, cons, prod in rows
    ]


def latest_bucket(
    session: Session,
    scope: Scope,
    before: datetime | None = None,
    house_id: int | None = None,
    community_id: int | None = None,
) -> datetime | None:
    """Start of the scope's latest 15-minute bucket with readings (before `before`, naive UTC), or None.

    Lets a forecast name where the data ends instead of only saying "no readings"."""
    entities = scope_filter(session, scope, house_id, community_id)  # the scope's checks, always
    r = EnergyRollup
    stmt = select(func.max(r.bucket_start)).where(
        r.resolution == "15min", fleet_rows() if whole_fleet(scope, house_id, community_id) else entities
    )
    if before is not None:
        stmt = stmt.where(r.bucket_start < before)
    return session.scalar(stmt)


def _producing_devices(scope: Scope, house_id: int | None, community_id: int | None) -> ColumnElement[bool]:
    """Devices the rollups count as production for the scope (a PV inverter or export meter, not an
    appliance; dashboard.rollups)."""
    d = Device
    if house_id is not None:
        where = d.house_id == house_id
    elif community_id is not None:
        houses = select(community_houses.c.house_id).where(community_houses.c.community_id == community_id)
        in_houses = d.house_id.in_(houses)
        if not scope.all_houses:
            in_houses = and_(in_houses, d.house_id.in_(scope.house_ids))
        parks = select(PVPark.id).where(PVPark.community_id == community_id)
        where = or_(in_houses, d.pv_park_id.in_(parks))
    elif scope.all_houses:
        where = or_(d.house_id.is_not(None), d.pv_park_id.is_not(None))
    else:
        where = d.house_id.in_(scope.house_ids)
    return and_(d.direction == "production", d.kind != "appliance", where)


def has_production_devices(
    session: Session, scope: Scope, house_id: int | None = None, community_id: int | None = None
) -> bool:
    """Whether the scope has a device the rollups count as production: without one a production series
    is zeros, nothing to forecast."""
    scope_filter(session, scope, house_id, community_id)  # the scope's checks, always
    producing = _producing_devices(scope, house_id, community_id)
    return session.scalar(select(Device.id).where(producing).limit(1)) is not None


def installed_pv_kw(
    session: Session, scope: Scope, house_id: int | None = None, community_id: int | None = None
) -> float | None:
    """The scope's installed PV: the rated kW(p) of the PVs and PV parks its production devices belong
    to, each counted once. None when it has no production device, or one without PV metadata (an export
    meter with no PV recorded): then nothing bounds what it may produce."""
    scope_filter(session, scope, house_id, community_id)  # the scope's checks, always
    rows = session.execute(
        select(Device.pv_id, Device.pv_park_id).where(_producing_devices(scope, house_id, community_id))
    ).all()
    if not rows or any(pv is None and park is None for pv, park in rows):
        return None
    pvs = {pv for pv, _park in rows if pv is not None}
    parks = {park for _pv, park in rows if park is not None}
    total = 0.0
    if pvs:
        total += session.scalar(select(func.sum(PV.capacity_kwp)).where(PV.id.in_(pvs))) or 0.0
    if parks:
        total += session.scalar(select(func.sum(PVPark.capacity_kw)).where(PVPark.id.in_(parks))) or 0.0
    return float(total) if total > 0 else None


def visible_device(session: Session, scope: Scope, serial: str) -> Device:
    """The device with this serial if the scope may see its readings, else NotFound."""
    if not scope.per_house_allowed:
        raise Forbidden("Third-party apps may read aggregates only")
    device = session.scalar(select(Device).where(Device.serial == serial))
    visible = device is not None and (
        scope.all_houses or (device.house_id is not None and scope.can_see_house(device.house_id))
    )
    if not visible:
        raise NotFound(f"Device {serial!r} not found")
    return device


def raw_measurements(
    session: Session, scope: Scope, serial: str, start: datetime, end: datetime
) -> list[dict]:
    if end <= start:
        raise ValidationFailed(details=[{"field": "end", "message": "must be after start"}])
    device = visible_device(session, scope, serial)
    m = Measurement
    rows = session.execute(
        select(m.ts, m.power_w, m.energy_wh, m.voltage_v, m.current_a, m.power_factor)
        .where(m.device_id == device.id, m.ts >= start, m.ts < end)
        .order_by(m.ts)
        .limit(MAX_RAW_ROWS + 1)
    ).all()
    if len(rows) > MAX_RAW_ROWS:
        raise ValidationFailed(
            details=[{"field": "end", "message": f"more than {MAX_RAW_ROWS} readings; shorten the range"}]
        )
    return [
        {
            "timestamp": iso_utc(ts) if ts.microsecond == 0 else ts.isoformat() + "Z",
            "power_w": p,
            "energy_wh": e,
            "voltage_v": v,
            "current_a": c,
            "power_factor": pf,
        }
        for ts, p, e, v, c, pf in rows
    ]
