"""Energy cost and CO2 of a house or a set of houses, from the hourly rollups, in one SQL pass.

Per house and hour, grid import = max(consumption - production, 0) and export = max(production -
consumption, 0), with consumption and production as the rollups count them (dashboard/rollups.py: house
meters of direction consumption; PV inverters and production meters): the hour is the settlement
interval (as hourly net-billing settles). Then, summed over the hours of each bucket:
    cost = import kWh x the import price valid at the hour's local time (flat, or the time-of-use
           period of that local hour and weekday/weekend)
         - export kWh x the feed-in price
         + the standing charge per local day, spread evenly over that day's 23, 24 or 25 hours (so hourly
           bars add up to the daily ones; hours not begun yet carry none)
    CO2  = import kWh x the grid's intensity of that hour (stored hourly values, else GRID_CO2_G_PER_KWH).
Exports are not credited with CO2: an average grid intensity does not say what an exported kWh
displaced, and crediting it would count the same low-carbon kWh again for whoever imports it
(the GHG Protocol's location-based method counts electricity bought only).

Local time in SQL without a time-zone database (the embedded SQLite has none): each hour's UTC offset is
a CASE over the zone's offset changes within the range (zoneinfo, here), added to the epoch seconds;
local hour, weekday and day number are integer arithmetic on that. A fleet sums only the houses that have
a tariff (`houses_without_tariff` says how many lack one); third-party apps get no cost or CO2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Integer, and_, case, cast, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session

from dashboard.errors import Forbidden, NotFound
from dashboard.schema import Community, EnergyRollup, House, community_houses
from dashboard.schema_features import GridIntensity, Tariff, TariffPeriod
from dashboard.scope import Scope

EPOCH_DAY = date(1970, 1, 1)
GROUPS = ("hour", "day")


@dataclass
class Bucket:
    """One bucket's figures. Cost parts in the currency; None where no house of the bucket has a tariff
    (cost) or no intensity is known (CO2)."""

    import_kwh: float = 0.0
    export_kwh: float = 0.0
    energy_cost: float | None = None  # import x import price
    feed_in_credit: float | None = None  # export x feed-in price
    standing_charge: float | None = None
    co2_kg: float | None = None

    @property
    def cost(self) -> float | None:
        parts = (self.energy_cost, self.feed_in_credit, self.standing_charge)
        if all(p is None for p in parts):
            return None
        return (self.energy_cost or 0.0) - (self.feed_in_credit or 0.0) + (self.standing_charge or 0.0)

    def add(self, other: Bucket) -> None:
        self.import_kwh += other.import_kwh
        self.export_kwh += other.export_kwh
        for name in ("energy_cost", "feed_in_credit", "standing_charge", "co2_kg"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, (mine or 0.0) + theirs)


@dataclass
class CostResult:
    currency: str
    group: str  # hour | day
    buckets: dict = field(default_factory=dict)  # key -> Bucket; key: naive-UTC bucket start, or
    # (house id, bucket start) when per house; a day's start is its local midnight
    houses: int = 0
    houses_with_tariff: int = 0
    has_tariff: bool = False
    has_co2: bool = False

    @property
    def houses_without_tariff(self) -> int:
        return self.houses - self.houses_with_tariff

    def total(self) -> Bucket:
        out = Bucket()
        for bucket in self.buckets.values():
            out.add(bucket)
        return out


# ---- which houses --------------------------------------------------------------------------------------


def scope_houses(
    session: Session, scope: Scope, house_id: int | None = None, community_id: int | None = None
) -> list[int] | None:
    """The houses the cost sums over (None: every house), checked against the scope like every query."""
    if not scope.per_house_allowed:
        raise Forbidden("Third-party apps see no cost or CO2: tariffs are the households' contracts")
    if house_id is not None:
        scope.require_house(house_id)
        if session.get(House, house_id) is None:
            raise NotFound(f"House {house_id} not found")
        return [house_id]
    if community_id is not None:
        if not scope.can_see_community(community_id) or session.get(Community, community_id) is None:
            raise NotFound(f"Community {community_id} not found")
        houses = session.scalars(
            select(community_houses.c.house_id).where(community_houses.c.community_id == community_id)
        )
        return sorted(h for h in houses if scope.all_houses or h in scope.house_ids)
    return None if scope.all_houses else sorted(scope.house_ids)


# ---- time ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourGrid:
    """Every UTC hour of [start, end), with its local day (a date) and UTC offset (seconds)."""

    hours: pd.DatetimeIndex  # naive UTC
    local_day: np.ndarray  # days since 1970-01-01, local
    offset_s: np.ndarray

    @classmethod
    def of(cls, start: datetime, end: datetime, timezone: str) -> HourGrid:
        hours = pd.date_range(start, end, freq="h", inclusive="left")
        local = hours.tz_localize("UTC").tz_convert(timezone).tz_localize(None)
        offset_s = ((local - hours).total_seconds()).to_numpy().astype(np.int64)
        local_day = ((hours.as_unit("s").asi8 + offset_s) // 86400).astype(np.int64)
        return cls(hours, local_day, offset_s)

    def offset_sql(self, column):
        """The UTC offset (s) of a naive-UTC column inside the grid, as a CASE over the offset changes."""
        if len(self.offset_s) == 0:
            return literal(0)
        changes = np.flatnonzero(np.diff(self.offset_s)) + 1
        if len(changes) == 0:
            return literal(int(self.offset_s[0]))
        whens = [(column < self.hours[i].to_pydatetime(), int(self.offset_s[i - 1])) for i in changes]
        return case(*whens, else_=int(self.offset_s[-1]))


def _epoch_s(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":  # date_part: a double; EXTRACT's numeric is slower
        return cast(func.date_part("epoch", column), BigInteger)
    return cast(func.strftime("%s", column), Integer)


def _day_number(session: Session, column):
    """A DATE column as days since 1970-01-01."""
    if session.get_bind().dialect.name == "postgresql":
        return column - literal_column("DATE '1970-01-01'")
    return cast(func.julianday(column) - 2440587.5, Integer)


def local_midnight(day_number: int, timezone: str) -> datetime:
    day = EPOCH_DAY + timedelta(days=int(day_number))
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return midnight.astimezone(UTC).replace(tzinfo=None)


# ---- the computation -----------------------------------------------------------------------------------


def _tariffs_in_range(session: Session, houses: list[int] | None, first: date, last: date) -> list[Tariff]:
    t = Tariff
    stmt = select(t).where(t.valid_from <= last, or_(t.valid_to.is_(None), t.valid_to >= first))
    if houses is not None:
        stmt = stmt.where(t.house_id.in_(houses))
    return list(session.scalars(stmt))


def _house_count(session: Session, houses: list[int] | None) -> int:
    return len(houses) if houses is not None else session.scalar(select(func.count()).select_from(House))


def compute(
    session: Session,
    houses: list[int] | None,
    start: datetime,
    end: datetime,
    timezone: str,
    currency: str,
    co2_constant: float | None,
    now: datetime,
    group: str = "hour",
    per_house: bool = False,
) -> CostResult | None:
    """Cost and CO2 per hour or local day of [start, end) (naive UTC, whole hours) for `houses` (None:
    all), or None when no house has a tariff in the range and no carbon intensity is known."""
    assert group in GROUPS
    grid = HourGrid.of(start, end, timezone)
    result = CostResult(currency, group)
    if len(grid.hours) == 0:
        return None
    first, last = (EPOCH_DAY + timedelta(days=int(d)) for d in (grid.local_day[0], grid.local_day[-1]))
    tariffs = [] if houses == [] else _tariffs_in_range(session, houses, first, last)
    gi = GridIntensity
    result.has_tariff = bool(tariffs)
    result.has_co2 = houses != [] and (
        co2_constant is not None
        or session.scalar(select(gi.hour).where(gi.hour >= start, gi.hour < end).limit(1)) is not None
    )
    if not result.has_tariff and not result.has_co2:
        return None
    result.houses = _house_count(session, houses)
    result.houses_with_tariff = len({t.house_id for t in tariffs})
    # CO2 reads every house of the set; cost alone only the houses with a tariff
    read = houses if result.has_co2 else sorted({t.house_id for t in tariffs})
    _energy(session, result, grid, read, start, end, co2_constant, per_house, timezone)
    if result.has_tariff:
        _standing(result, grid, tariffs, now, per_house, timezone)
    return result


def _energy(session, result, grid, houses, start, end, co2_constant, per_house, timezone) -> None:
    r, t, p, gi = EnergyRollup, Tariff, TariffPeriod, GridIntensity
    local_s = _epoch_s(session, r.bucket_start) + grid.offset_sql(r.bucket_start)
    where = [r.resolution == "hour", r.entity_kind == "house", r.bucket_start >= start, r.bucket_start < end]
    if houses is not None:
        where.append(r.entity_id.in_(houses))
    flows = (
        select(
            r.entity_id.label("house_id"),
            r.bucket_start.label("hour"),
            case((r.consumption_wh > r.production_wh, r.consumption_wh - r.production_wh), else_=0.0).label(
                "imp"
            ),
            case((r.production_wh > r.consumption_wh, r.production_wh - r.consumption_wh), else_=0.0).label(
                "exp"
            ),
            (local_s // 86400).label("day"),
            ((local_s // 3600) % 24).label("local_hour"),
            ((local_s // 86400 + 3) % 7 >= 5).label("weekend"),  # 1970-01-01 was a Thursday (3, Monday 0)
        )
        .where(*where)
        .subquery()
    )
    f = flows.c
    valid = and_(
        t.house_id == f.house_id,
        f.day >= _day_number(session, t.valid_from),
        or_(t.valid_to.is_(None), f.day <= _day_number(session, t.valid_to)),
    )
    in_period = and_(
        p.tariff_id == t.id,
        or_(
            and_(p.start_hour < p.end_hour, f.local_hour >= p.start_hour, f.local_hour < p.end_hour),
            and_(p.start_hour > p.end_hour, or_(f.local_hour >= p.start_hour, f.local_hour < p.end_hour)),
        ),
        or_(p.days == "all", and_(p.days == "weekend", f.weekend), and_(p.days == "weekday", ~f.weekend)),
    )
    intensity = gi.g_per_kwh if co2_constant is None else func.coalesce(gi.g_per_kwh, co2_constant)
    key = f.hour if result.group == "hour" else f.day
    keys = [f.house_id, key] if per_house else [key]
    stmt = (
        select(
            *keys,
            func.sum(f.imp),
            func.sum(f.exp),
            func.sum(f.imp * func.coalesce(p.import_price, t.import_price)),
            func.sum(f.exp * t.export_price),
            func.sum(f.imp * intensity),
        )
        .select_from(flows)
        .outerjoin(t, valid)
        .outerjoin(p, in_period)
        .outerjoin(gi, gi.hour == f.hour)
        .group_by(*keys)
    )
    for row in session.execute(stmt):
        *names, imp, exp, energy, credit, co2 = row
        when = names[-1] if result.group == "hour" else local_midnight(names[-1], timezone)
        bucket = Bucket(
            import_kwh=(imp or 0.0) / 1000.0,
            export_kwh=(exp or 0.0) / 1000.0,
            energy_cost=None if energy is None else energy / 1000.0,
            feed_in_credit=None if credit is None else credit / 1000.0,
            co2_kg=None if co2 is None else co2 / 1e6,
        )
        result.buckets[(names[0], when) if per_house else when] = bucket


def _standing(
    result: CostResult, grid: HourGrid, tariffs: list[Tariff], now: datetime, per_house, timezone
) -> None:
    """Each tariff's standing charge, spread over the hours of each local day (23, 24 or 25), for the
    hours of the grid that have begun. Houses sharing a charge and validity are done in one pass."""
    begun = grid.hours < pd.Timestamp(now)
    days = np.unique(grid.local_day)
    lengths = {int(d): _day_hours(int(d), timezone) for d in days}
    per_hour = 1.0 / np.array([lengths[int(d)] for d in grid.local_day])
    if result.group == "hour":
        keys = [h.to_pydatetime() for h in grid.hours]
    else:
        keys = [local_midnight(int(d), timezone) for d in grid.local_day]
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    slot = np.array([index[k] for k in keys])
    shares = Counter()
    for t in tariffs:
        if t.standing_charge_per_day:
            owner = t.house_id if per_house else None
            shares[(owner, t.standing_charge_per_day, t.valid_from, t.valid_to)] += 1
    for (owner, charge, valid_from, valid_to), n in shares.items():
        to_day = (valid_to or date.max).toordinal() - EPOCH_DAY.toordinal()
        from_day = valid_from.toordinal() - EPOCH_DAY.toordinal()
        mask = begun & (grid.local_day >= from_day) & (grid.local_day <= to_day)
        sums = np.bincount(slot[mask], weights=per_hour[mask] * charge * n, minlength=len(index))
        for k, i in index.items():
            if sums[i]:
                bucket = result.buckets.setdefault((owner, k) if per_house else k, Bucket())
                bucket.standing_charge = (bucket.standing_charge or 0.0) + float(sums[i])
    # houses with a tariff but no rollup rows still owe their standing charge: done above (setdefault)


def _day_hours(day_number: int, timezone: str) -> int:
    return round(
        (local_midnight(day_number + 1, timezone) - local_midnight(day_number, timezone)).total_seconds()
        / 3600
    )


# ---- the exports' columns ------------------------------------------------------------------------------


def cost_columns(
    session: Session, scope: Scope, summary, settings, now: datetime, house_id=None, community_id=None
) -> None:
    """Add grid import and export (kWh), cost and CO2 columns to an export summary (dashboard/exports.py
    Summary), in place: cost (`cost_<currency>`) only when a house of the export has a tariff in the
    range, CO2 only when an intensity is known; nothing for third-party apps. Full precision (the API's
    JSON and CSV); an aggregate row sums the houses with a tariff. Returns how many houses of the export
    lack a tariff (None: no cost column)."""
    if not scope.per_house_allowed or not summary.rows or summary.start is None:
        return None
    houses = scope_houses(session, scope, house_id, community_id)
    result = compute(session, houses, summary.start, summary.end, settings.timezone, settings.currency,
                     settings.grid_co2_g_per_kwh, now, group="day", per_house=summary.per_house)  # fmt: skip
    if result is None:
        return None
    cost_name = f"cost_{settings.currency.lower()}"
    added = (
        ["import_kwh", "export_kwh"]
        + ([cost_name] if result.has_tariff else [])
        + (["co2_kg"] if result.has_co2 else [])
    )
    summary.columns.extend(added)
    zone = ZoneInfo(settings.timezone)
    by_day = {}  # (house or None, local date) -> Bucket
    for key, bucket in result.buckets.items():
        owner, when = key if summary.per_house else (None, key)
        by_day[owner, when.replace(tzinfo=UTC).astimezone(zone).date()] = bucket
    for row in summary.rows:
        first, last = date.fromisoformat(row["period_start"]), date.fromisoformat(row["period_end"])
        owner = row.get("house_id") if summary.per_house else None
        total = Bucket()
        for offset in range((last - first).days):
            bucket = by_day.get((owner, first + timedelta(days=offset)))
            if bucket is not None:
                total.add(bucket)
        values = {"import_kwh": total.import_kwh, "export_kwh": total.export_kwh, cost_name: total.cost,
                  "co2_kg": total.co2_kg}  # fmt: skip
        row.update({name: values[name] for name in added})
    return result.houses_without_tariff if result.has_tariff else None
