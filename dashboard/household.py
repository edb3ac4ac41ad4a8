"""The household view: a house's (or a consumer's houses') energy flow, its appliances, its comparison with
earlier periods, and the totals of the communities its user belongs to. Computed in SQL from the
15-minute rollups (hourly for the appliances, which keep no finer ones). Rules: docs/data-rules.md,
"Household view".

Grid import and export, two ways:
- *measured*: a house with an export (grid) meter, a `meter` of direction `production`. Its consumption
  meter then stands at the grid connection and measures the import; its rollups hold the load (import + PV -
  export) and the PV already (dashboard/rollups.py), the export meter's own rollups its export. PV used on
  site = PV - export; import = load - PV + export.
- *computed per 15-minute interval* otherwise (the usual case: the main meter measures the whole load, the
  inverters the PV): import = max(consumption - production, 0), export = max(production - consumption, 0),
  PV used on site = min(consumption, production), per house and interval, then summed. Never netted
  across intervals or houses: a sunny noon does not pay for the evening, nor one house's PV for another's
  load, because the grid saw both flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from dashboard import house_scope
from dashboard.errors import NotFound
from dashboard.household_periods import Window
from dashboard.queries import kwh
from dashboard.rollups import LocalDayBuckets, bucket_end
from dashboard.schema import (
    Community,
    Device,
    EnergyRollup,
    PVPark,
    community_houses,
    user_communities,
)
from dashboard.scope import Scope

MEASURED, COMPUTED = "measured", "computed per 15-minute interval"
HOUR = timedelta(hours=1)


def houses_in_scope(session: Session, scope: Scope, choice: int | None) -> list[int]:
    """The houses a request sums (dashboard/house_scope.py): one house, or with `choice` None all of a
    consumer's houses. Staff must name a house."""
    houses = house_scope.houses_in_scope(
        session, scope, "Third-party apps may read aggregates only, not a household's energy", choice
    )
    if houses is None:
        raise NotFound("Choose a house")
    return houses


def export_meters(session: Session, house_ids: list[int]) -> dict[int, list[int]]:
    """Per house with grid metering, the ids of its export meters."""
    rows = session.execute(
        select(Device.house_id, Device.id).where(
            Device.house_id.in_(house_ids), Device.kind == "meter", Device.direction == "production"
        )
    ).all()
    out: dict[int, list[int]] = {}
    for house_id, device_id in rows:
        out.setdefault(house_id, []).append(device_id)
    return out


@dataclass
class Flow:
    """Energy of a window in Wh; `methods` says how import and export were found, per house."""

    consumption: float = 0.0
    production: float = 0.0
    self_consumed: float = 0.0
    grid_import: float = 0.0
    grid_export: float = 0.0
    intervals: int = 0

    def add(self, other: Flow) -> None:
        for name in ("consumption", "production", "self_consumed", "grid_import", "grid_export", "intervals"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        pct = lambda part, whole: round(100.0 * part / whole, 2) if whole > 0 else None  # noqa: E731
        return {
            "consumption_kwh": kwh(self.consumption),
            "production_kwh": kwh(self.production),
            "self_consumed_kwh": kwh(self.self_consumed),
            "grid_import_kwh": kwh(self.grid_import),
            "grid_export_kwh": kwh(self.grid_export),
            # PV used on site / PV produced, and PV used on site / consumption
            "self_consumption_pct": pct(self.self_consumed, self.production),
            "self_sufficiency_pct": pct(self.self_consumed, self.consumption),
            "intervals": self.intervals,
        }


def _house_rollups(house_ids: list[int], window: Window):
    r = EnergyRollup
    return and_(r.resolution == "15min", r.entity_kind == "house", r.entity_id.in_(house_ids),
                r.bucket_start >= window.start, r.bucket_start < window.end)  # fmt: skip


def _spans(window: Window) -> list[tuple[str, datetime, datetime]]:
    """The window as rollup rows, exactly: (resolution, from, to) for whole local days (when the window knows
    its time zone), whole hours, and the 15-minute rows at its ragged ends. Each 15-minute row with its start
    in [start, end) lies in exactly one span, and sums over the spans equal sums over those rows (import and
    export too: hourly and daily rows hold the sums of their intervals', dashboard/settlement.py)."""
    start, end = window.start, window.end
    first_hour = start if start == start.replace(minute=0, second=0, microsecond=0) else (
        start.replace(minute=0, second=0, microsecond=0) + HOUR)  # fmt: skip
    last_hour = end.replace(minute=0, second=0, microsecond=0)
    if first_hour >= last_hour:
        return [("15min", start, end)]
    spans = [("15min", start, first_hour), ("15min", last_hour, end)]
    hours = [(first_hour, last_hour)]
    if window.timezone is not None:
        midnight = LocalDayBuckets(window.timezone)
        first_day = midnight(first_hour)
        if first_day < first_hour:
            first_day = bucket_end("day", first_day, midnight)
        last_day = midnight(last_hour)
        on_hours = all(d == d.replace(minute=0) for d in (first_day, last_day))  # not so in a :30 zone
        if on_hours and first_day < last_day:
            spans.append(("day", first_day, last_day))
            hours = [(first_hour, first_day), (last_day, last_hour)]
    spans += [("hour", a, b) for a, b in hours]
    return [(res, a, b) for res, a, b in spans if a < b]


def _hourly_spans(window: Window):
    """The hourly rows with their start in the window (appliances keep no 15-minute rows), whole local days
    read from the daily rows: the same sums."""
    r = EnergyRollup
    spans = [("hour" if res == "15min" else res, a, b) for res, a, b in _spans(window)]
    return or_(*(and_(r.resolution == res, r.bucket_start >= a, r.bucket_start < b) for res, a, b in spans))


def _sums(session: Session, kind: str, ids: list[int], window: Window, *columns):
    """Sums of rollup columns of these entities over the window (read through `_spans`)."""
    r = EnergyRollup
    spans = or_(
        *(and_(r.resolution == res, r.bucket_start >= a, r.bucket_start < b) for res, a, b in _spans(window))
    )
    return session.execute(
        select(*(func.coalesce(func.sum(c), 0.0) for c in columns))
        .where(r.entity_kind == kind, r.entity_id.in_(ids), spans)
    ).one()  # fmt: skip


def _intervals(session: Session, house_ids: list[int], window: Window) -> int:
    """15-minute rows with data (an index-only count on the primary key)."""
    return session.scalar(
        select(func.count()).select_from(EnergyRollup).where(_house_rollups(house_ids, window))
    )


def _computed(session: Session, house_ids: list[int], window: Window) -> Flow:
    """Per house and 15-minute interval: import and export as settled per interval (the rollups' import_wh,
    export_wh), PV used on site = consumption - import = min(consumption, production)."""
    if not house_ids:
        return Flow()
    r = EnergyRollup
    c, p, imported, exported = _sums(
        session, "house", house_ids, window, r.consumption_wh, r.production_wh, r.import_wh, r.export_wh
    )
    return Flow(c, p, c - imported, imported, exported, _intervals(session, house_ids, window))


def _measured(session: Session, house_id: int, meters: list[int], window: Window) -> Flow:
    """A house with an export meter: its rollups hold the load and the PV already (dashboard/rollups.py), the
    export meters' own rollups the export, so import = load - PV + export (what its consumption meter read)."""
    r = EnergyRollup
    load, pv = _sums(session, "house", [house_id], window, r.consumption_wh, r.production_wh)
    (exported,) = _sums(session, "device", meters, window, r.production_wh)
    # no inverter: the PV is its export (production = export), its own use unseen, so 0
    used = max(pv - exported, 0.0)
    return Flow(load, pv, used, load - pv + exported, exported, _intervals(session, [house_id], window))


def energy_flow(session: Session, house_ids: list[int], window: Window) -> tuple[Flow, dict[int, str]]:
    """The window's flow summed over the houses (already checked against the caller's scope), and per
    house how its import and export were found."""
    grid = export_meters(session, house_ids)
    flow = _computed(session, [h for h in house_ids if h not in grid], window)
    for house_id, meters in sorted(grid.items()):
        flow.add(_measured(session, house_id, meters, window))
    return flow, {h: MEASURED if h in grid else COMPUTED for h in house_ids}


def appliances(session: Session, house_ids: list[int], window: Window, consumption_wh: float) -> dict:
    """Energy per appliance sub-meter (hourly rollups) and "other / unmetered" = consumption minus the
    sub-metered sum, never below 0: when the sub-meters read more than the main meter (a wiring or
    direction mistake, or a main meter that missed readings), other is 0 and `excess_kwh` says by how much."""
    r, d = EnergyRollup, Device
    rows = session.execute(
        select(d.id, d.name, d.house_id, func.coalesce(func.sum(r.consumption_wh), 0.0))
        .join(r, and_(r.entity_kind == "device", r.entity_id == d.id, _hourly_spans(window)), isouter=True)
        .where(d.house_id.in_(house_ids), d.kind == "appliance")
        .group_by(d.id, d.name, d.house_id)
    ).all()  # fmt: skip
    items = sorted(({"device_id": i, "name": n, "house_id": h, "energy_kwh": kwh(wh)} for i, n, h, wh in rows),
                   key=lambda a: (-a["energy_kwh"], a["name"], a["device_id"]))  # fmt: skip
    metered = sum(wh for *_x, wh in rows)
    return {
        "appliances": items,
        "submetered_kwh": kwh(metered),
        "other_kwh": kwh(max(consumption_wh - metered, 0.0)),
        "excess_kwh": kwh(max(metered - consumption_wh, 0.0)),
    }


def delta_pct(now: float, before: float) -> float | None:
    return round(100.0 * (now - before) / before, 1) if before > 0 else None


def comparison(session: Session, house_ids: list[int], current: Window, others: dict[str, Window]) -> dict:
    """The current window's flow beside each comparison window's, with the change in % (None when the
    earlier value is 0 or had no readings)."""
    now, _methods = energy_flow(session, house_ids, current)
    out = {"current": {"label": current.label, "start": current.start, "end": current.end} | now.as_dict()}
    for key, window in others.items():
        then, _m = energy_flow(session, house_ids, window)
        values = then.as_dict()
        change = {
            f"{name}_change_pct": delta_pct(getattr(now, name), getattr(then, name))
            for name in ("consumption", "production", "grid_import", "grid_export")
        }
        out[key] = {"label": window.label, "start": window.start, "end": window.end} | values | change
    return out


# ---- communities -----------------------------------------------------------------------------------


def member_communities(session: Session, scope: Scope, house_ids: list[int]) -> list[tuple[int, str]]:
    """The communities whose totals the household view shows: a consumer's own memberships (users <->
    communities); for staff, the communities of the chosen houses."""
    if scope.user_id is not None and not scope.all_houses:
        stmt = (
            select(Community.id, Community.name)
            .join(user_communities, user_communities.c.community_id == Community.id)
            .where(user_communities.c.user_id == scope.user_id)
        )
    else:
        stmt = (
            select(Community.id, Community.name)
            .join(community_houses, community_houses.c.community_id == Community.id)
            .where(community_houses.c.house_id.in_(house_ids))
        )
    return sorted(set(session.execute(stmt).all()), key=lambda c: (c[1], c[0]))


def _days_then_hours(window: Window, timezone: str):
    """Rollup rows covering the window: its whole local days from the daily rollups, the rest of the last
    day from the hourly ones (a year of a community: hundreds of rows per house, not thousands)."""
    r = EnergyRollup
    midnight = LocalDayBuckets(timezone)
    last = midnight(window.end)
    if midnight(window.start) != window.start or last <= window.start:
        return and_(r.resolution == "hour", r.bucket_start >= window.start, r.bucket_start < window.end)
    days = and_(r.resolution == "day", r.bucket_start >= window.start, r.bucket_start < last)
    return or_(days, and_(r.resolution == "hour", r.bucket_start >= last, r.bucket_start < window.end))


def community_totals(
    session: Session, community_id: int, name: str, window: Window, k: int, timezone: str = "UTC"
) -> dict:
    """A community's consumption, production (houses and PV parks) and net over the window: totals only,
    never a house's share, and only when it has at least k houses and at least k of them reported."""
    houses = session.scalar(
        select(func.count())
        .select_from(community_houses)
        .where(community_houses.c.community_id == community_id)
    )
    out = {"community_id": community_id, "name": name, "houses": houses}
    if houses < k:
        return out | {"available": False, "reason": f"fewer than {k} houses: totals are not shown"}
    r = EnergyRollup
    members = select(community_houses.c.house_id).where(community_houses.c.community_id == community_id)
    parks = select(PVPark.id).where(PVPark.community_id == community_id)
    in_window = _days_then_hours(window, timezone)
    c, p_houses, reporting = session.execute(
        select(func.coalesce(func.sum(r.consumption_wh), 0.0), func.coalesce(func.sum(r.production_wh), 0.0),
               func.count(func.distinct(r.entity_id)))
        .where(in_window, r.entity_kind == "house", r.entity_id.in_(members), r.readings_count > 0)
    ).one()  # fmt: skip
    if reporting < k:
        return out | {"available": False, "reason": f"fewer than {k} houses reported in this period"}
    p_parks = session.scalar(
        select(func.coalesce(func.sum(r.production_wh), 0.0)).where(
            in_window, r.entity_kind == "pv_park", r.entity_id.in_(parks)
        )
    )
    production = p_houses + p_parks
    return out | {
        "available": True,
        "houses_reporting": reporting,
        "consumption_kwh": kwh(c),
        "production_kwh": kwh(production),
        "net_kwh": kwh(c - production),
    }


def communities_totals(
    session: Session, scope: Scope, house_ids: list[int], window: Window, k: int, timezone: str
) -> list:
    return [
        community_totals(session, cid, name, window, k, timezone)
        for cid, name in member_communities(session, scope, house_ids)
    ]


def window_bounds(start: datetime, end: datetime, label: str) -> Window:
    """A custom [start, end) (naive UTC) as a window."""
    return Window(start, end, label, complete=True)
