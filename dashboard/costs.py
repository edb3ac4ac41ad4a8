"""Energy cost and CO2 of a house or a set of houses, from grid import and export settled per 15 minutes.

Import and export are the house rollups' `import_wh` and `export_wh` (dashboard/settlement.py): per house and
15-minute interval, import = max(consumption - production, 0) and export = max(production - consumption, 0),
an hourly or daily row holding the sums of its intervals' values. That is how EU smart-meter settlement
works (the Netherlands and Belgium settle per quarter hour, the EU's imbalance settlement period is 15
minutes): an hour that exported at 12:00-12:15 and imported at 12:45-13:00 both paid and earned. It is the
household view's rule too, so the two agree on a period's import and export. Then, per bucket:
    cost = import kWh x the import price valid at the local hour (flat, or the time-of-use period of that
           local hour and weekday/weekend; prices are per local hour, so hourly rows are exact)
         - export kWh x the feed-in price
         + the standing charge per local day, spread evenly over that day's 23, 24 or 25 hours (so hourly
           bars add up to the daily ones; hours not begun yet carry none)
    CO2  = import kWh x the grid's intensity of that hour (stored hourly values, else GRID_CO2_G_PER_KWH).
Exports are not credited with CO2: an average grid intensity does not say what an exported kWh
displaced, and crediting it would count the same low-carbon kWh again for whoever imports it
(the GHG Protocol's location-based method counts electricity bought only).

Fast by reading few rows (dashboard/cost_pricing.py): tariffs with the same prices form one *plan*; SQL
sums import and export per plan and rollup row time and numpy prices them, so the fleet's 30 days come
back as ~720 x plans rows, not 144,000 (per house, on PostgreSQL, the prices go into SQL as arrays and only
the buckets come back). Hourly rows serve only the range's ragged ends; its whole local days come from
daily rows when a price is constant over a local day (daily buckets, no tariff of the range with
time-of-use periods, no hourly intensity stored in it), else from `house_day_hours` (a row per house and
local day with its 23-25 hours' import and export, dashboard/settlement.py keeps it): SQL sums each hour
slot per plan and day, numpy prices them per hour (a year of the fleet: 73,000 rows read, not 1,750,000).
Per house, and below MANY_HOUSE_DAYS, whole days come from hourly rows unless daily ones serve. A fleet sums only the houses that have
a tariff (`houses_without_tariff` says how many lack one); third-party apps get no cost or CO2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from dashboard.cost_pricing import (
    EPOCH_DAY,
    HourGrid,
    Plans,
    PricedTariff,
    day_hour_sums,
    day_hours,
    fetch_columns,
    hour_of,
    priced_here,
    priced_in_sql,
    tariffs_in_range,
)
from dashboard.house_scope import houses_in_scope
from dashboard.schema import EnergyRollup, House
from dashboard.schema_features import GridIntensity
from dashboard.scope import Scope

GROUPS = ("hour", "day")
MANY_HOUSE_DAYS = 60  # whole local days x houses from which house_day_hours serves (~1,400 hourly rows)
REFUSAL = "Third-party apps see no cost or CO2: tariffs are the households' contracts"


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
    return houses_in_scope(session, scope, REFUSAL, house_id, community_id)


# ---- the computation -----------------------------------------------------------------------------------


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
    tariffs = [] if houses == [] else tariffs_in_range(session, houses, first, last)
    gi = GridIntensity
    hourly_co2 = houses != [] and (
        session.scalar(select(gi.hour).where(gi.hour >= start, gi.hour < end).limit(1)) is not None
    )
    result.has_tariff = bool(tariffs)
    result.has_co2 = houses != [] and (co2_constant is not None or hourly_co2)
    if not result.has_tariff and not result.has_co2:
        return None
    result.houses = _house_count(session, houses)
    result.houses_with_tariff = len({t.house_id for t in tariffs})
    # CO2 reads every house of the set; cost alone only the houses with a tariff
    read = houses if result.has_co2 else sorted({t.house_id for t in tariffs})
    _energy(session, result, grid, read, tariffs, co2_constant, hourly_co2, per_house, timezone)
    if result.has_tariff:
        _standing(result, grid, tariffs, now, per_house, timezone)
    return result


def _energy(session, result, grid, houses, tariffs, co2_constant, hourly_co2, per_house, timezone) -> None:
    """Import and export of the houses' rollup rows, priced per plan and hour. Summed per plan and row in SQL
    and priced here with numpy (a fleet's rows per plan and hour are few); per house on PostgreSQL, priced in
    SQL instead (the prices as arrays indexed by plan and hour), so that only the buckets come back, not a
    row per house and hour (30 days of 200 houses: 3 s -> 0.7 s at load 12; the arrays' fixed cost makes it
    slower for the fleet)."""
    r = EnergyRollup
    plans = Plans.of(tariffs, grid, timezone)
    daily_prices = result.group == "day" and not hourly_co2 and not any(t.periods for t in tariffs)
    # whole local days from house_day_hours (the ends from hours) when they hold many hourly rows: for a
    # few (one house, a month) a second statement and its 53 columns cost more than they save
    day_hours = not per_house and len(grid.midnights) - 1 >= MANY_HOUSE_DAYS / max(result.houses, 1)
    spans = grid.spans(days=daily_prices or day_hours)
    day_sums = None
    if not daily_prices and day_hours:
        for _day, first, last in (span for span in spans if span[0] == "day"):  # one at most
            day_sums = day_hour_sums(session, grid, plans, houses, first, last, result.group)
        spans = [span for span in spans if span[0] == "hour"]
    where = []
    if spans:
        in_spans = or_(
            *(and_(r.resolution == res, r.bucket_start >= a, r.bucket_start < b) for res, a, b in spans)
        )
        where = [r.entity_kind == "house", in_spans]
        if houses is not None:
            where.append(r.entity_id.in_(houses))
    intensity = _intensity(session, grid, co2_constant, hourly_co2)
    in_sql = per_house and session.get_bind().dialect.name == "postgresql"
    priced = priced_in_sql if in_sql else priced_here
    extra = {} if in_sql else {"day_sums": day_sums}
    names = grid.bucket_names(result.group, timezone)
    for owner, key, imp_wh, exp_wh, energy, credit, co2 in priced(session, grid, plans, intensity, where,
                                                                  result.group, per_house, **extra):  # fmt: skip
        when = names[int(key)]
        result.buckets[(int(owner), when) if per_house else when] = Bucket(
            import_kwh=float(imp_wh) / 1000.0,
            export_kwh=float(exp_wh) / 1000.0,
            energy_cost=None if energy is None or np.isnan(energy) else float(energy) / 1000.0,
            feed_in_credit=None if credit is None or np.isnan(credit) else float(credit) / 1000.0,
            co2_kg=None if co2 is None or np.isnan(co2) else float(co2) / 1e6,
        )


def _intensity(session, grid: HourGrid, co2_constant, hourly_co2) -> np.ndarray:
    """g CO2/kWh per hour of the grid: stored values, else the constant, else NaN (no CO2)."""
    out = np.full(len(grid.hours), np.nan if co2_constant is None else float(co2_constant))
    if hourly_co2:
        gi = GridIntensity
        hours = select(hour_of(session, gi.hour, grid), gi.g_per_kwh).where(
            gi.hour >= grid.start, gi.hour < grid.end
        )
        at, values = fetch_columns(session, hours)
        out[np.array(at, dtype=np.int64)] = values
    return out


def _standing(
    result: CostResult, grid: HourGrid, tariffs: list[PricedTariff], now: datetime, per_house, timezone
) -> None:
    """Each tariff's standing charge, spread over the hours of each local day (23, 24 or 25), for the
    hours of the grid that have begun. Houses sharing a charge and validity are done in one pass."""
    begun = grid.hours < pd.Timestamp(now)
    days, day_slot = np.unique(grid.local_day, return_inverse=True)
    per_hour = 1.0 / np.array([day_hours(int(d), timezone) for d in days])[day_slot]
    names = grid.bucket_names(result.group, timezone)
    slot = np.arange(len(grid.hours)) if result.group == "hour" else day_slot
    keys = [names[int(k)] for k in (range(len(grid.hours)) if result.group == "hour" else days)]
    shares = Counter()
    for t in tariffs:
        if t.standing_charge_per_day:
            owner = t.house_id if per_house else None
            shares[(owner, t.standing_charge_per_day, t.valid_from, t.valid_to)] += 1
    for (owner, charge, valid_from, valid_to), n in shares.items():
        to_day = (valid_to or date.max).toordinal() - EPOCH_DAY.toordinal()
        from_day = valid_from.toordinal() - EPOCH_DAY.toordinal()
        mask = begun & (grid.local_day >= from_day) & (grid.local_day <= to_day)
        sums = np.bincount(slot[mask], weights=per_hour[mask] * charge * n, minlength=len(keys))
        for i in np.flatnonzero(sums):
            bucket = result.buckets.setdefault((owner, keys[i]) if per_house else keys[i], Bucket())
            bucket.standing_charge = (bucket.standing_charge or 0.0) + float(sums[i])
    # houses with a tariff but no rollup rows still owe their standing charge: done above (setdefault)


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
