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

Fast by reading few rows and pricing in Python: tariffs with the same prices form one *plan*, and SQL sums
import and export per plan and rollup row time (per house only when asked), so the fleet's 30 days are
~720 x plans rows, not 144,000. When no tariff of the range has time-of-use periods and no hourly intensity
is stored in it, a price is constant over a local day: daily rows serve the range's whole local days
(hourly rows only its ragged ends). Otherwise hourly rows, priced per hour with numpy. A fleet sums only
the houses that have a tariff (`houses_without_tariff` says how many lack one); third-party apps get no
cost or CO2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from dashboard.house_scope import houses_in_scope
from dashboard.schema import EnergyRollup, House
from dashboard.schema_features import GridIntensity, Tariff, TariffPeriod
from dashboard.scope import Scope

EPOCH_DAY = date(1970, 1, 1)
GROUPS = ("hour", "day")
HOUR_S = 3600
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


# ---- time ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourGrid:
    """Every UTC hour of [start, end), with its local day (days since 1970-01-01) and local hour, and the
    positions (0..len) where a local day starts, the end included."""

    hours: pd.DatetimeIndex  # naive UTC
    local_day: np.ndarray
    local_hour: np.ndarray
    midnights: np.ndarray

    @classmethod
    def of(cls, start: datetime, end: datetime, timezone: str) -> HourGrid:
        edges = pd.date_range(start, end, freq="h")  # the hours and the end
        local_s = edges.tz_localize("UTC").tz_convert(timezone).tz_localize(None).as_unit("s").asi8
        midnights = np.flatnonzero(local_s % 86400 == 0)  # none in a :30 zone
        if len(edges) and edges[-1] != pd.Timestamp(end):
            midnights = midnights[midnights < len(edges)]
            edges = edges.append(pd.DatetimeIndex([end]))  # not on an hour: never a local midnight here
        local_s = local_s[: max(len(edges) - 1, 0)]
        return cls(edges[:-1], local_s // 86400, (local_s // HOUR_S) % 24, midnights)

    @property
    def start(self) -> datetime:
        return self.hours[0].to_pydatetime()

    @property
    def end(self) -> datetime:
        return self.hours[-1].to_pydatetime() + timedelta(hours=1)

    @property
    def weekend(self) -> np.ndarray:
        return (self.local_day + 3) % 7 >= 5  # 1970-01-01 was a Thursday (3; Monday 0)

    def bucket_names(self, group: str, timezone: str) -> dict:
        """A bucket's name by its key: an hour's position in the grid -> its naive-UTC start, or a local day
        number -> its local midnight (naive UTC)."""
        if group == "hour":
            return dict(enumerate(self.hours.to_pydatetime()))
        return {int(d): local_midnight(int(d), timezone) for d in np.unique(self.local_day)}

    def index(self, times) -> np.ndarray:
        """Positions in the grid of naive-UTC hour starts."""
        seconds = pd.DatetimeIndex(times).as_unit("s").asi8 - self.hours[:1].as_unit("s").asi8[0]
        return seconds // HOUR_S

    def spans(self, days: bool) -> list[tuple[str, datetime, datetime]]:
        """The grid as rollup rows: hourly, or with `days` its whole local days from the daily rows and only
        the ragged ends from hourly ones (all hourly when no whole day fits)."""
        if not days or len(self.midnights) < 2:
            return [("hour", self.start, self.end)]
        at = lambda i: self.start + timedelta(hours=int(i))  # noqa: E731
        first, last = at(self.midnights[0]), at(self.midnights[-1])
        spans = [("hour", self.start, first), ("day", first, last), ("hour", last, self.end)]
        return [(res, a, b) for res, a, b in spans if a < b]


@lru_cache(maxsize=8192)
def local_midnight(day_number: int, timezone: str) -> datetime:
    day = EPOCH_DAY + timedelta(days=int(day_number))
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return midnight.astimezone(UTC).replace(tzinfo=None)


def _day_number(day: date) -> int:
    return day.toordinal() - EPOCH_DAY.toordinal()


# ---- the computation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PricedTariff:
    """What the computation needs of a tariff (read as plain rows: ORM objects cost more than the query)."""

    house_id: int
    import_price: float | None
    export_price: float | None
    standing_charge_per_day: float | None
    valid_from: date
    valid_to: date | None
    periods: tuple = ()  # (days, start_hour, end_hour, import_price), sorted


def _tariffs_in_range(
    session: Session, houses: list[int] | None, first: date, last: date
) -> list[PricedTariff]:
    t, p = Tariff, TariffPeriod
    where = [t.valid_from <= last, or_(t.valid_to.is_(None), t.valid_to >= first)]
    if houses is not None:
        where.append(t.house_id.in_(houses))
    conn = session.connection()
    rows = conn.execute(select(t.id, t.house_id, t.import_price, t.export_price, t.standing_charge_per_day,
                               t.valid_from, t.valid_to).where(*where)).all()  # fmt: skip
    periods: dict[int, list] = {}
    if rows:
        ids = select(t.id).where(*where).scalar_subquery()
        for row in conn.execute(
            select(p.tariff_id, p.days, p.start_hour, p.end_hour, p.import_price).where(p.tariff_id.in_(ids))
        ):
            periods.setdefault(row[0], []).append(tuple(row[1:]))
    return [PricedTariff(*row[1:], periods=tuple(sorted(periods.get(row[0], ())))) for row in rows]


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


@dataclass
class Plans:
    """Tariffs with the same prices are one plan: per plan, the import price of every hour of the grid
    (NaN: none) and the feed-in price; the last row, all NaN, is "no tariff". `cases` are the plans'
    (houses, from, to) in UTC, each tariff's local days as rollup rows see them."""

    import_price: np.ndarray
    export_price: np.ndarray
    cases: list[tuple[int, list[int], datetime, datetime]]

    @classmethod
    def of(cls, tariffs: list[PricedTariff], grid: HourGrid, timezone: str) -> Plans:
        start, end = grid.start, grid.end
        ids: dict[tuple, int] = {}
        houses: dict[tuple[int, datetime, datetime], list[int]] = {}
        for t in tariffs:
            plan = ids.setdefault((t.import_price, t.export_price, t.periods), len(ids))
            since = max(start, local_midnight(_day_number(t.valid_from), timezone))
            until = (
                end if t.valid_to is None else min(end, local_midnight(_day_number(t.valid_to) + 1, timezone))
            )
            houses.setdefault((plan, since, until), []).append(t.house_id)
        import_price = np.full((len(ids) + 1, len(grid.hours)), np.nan)
        export_price = np.full(len(ids) + 1, np.nan)
        for (flat, feed_in, periods), plan in ids.items():
            import_price[plan] = np.nan if flat is None else flat
            export_price[plan] = np.nan if feed_in is None else feed_in
            for days, first, stop, price in reversed(periods):  # the first period that matches wins
                h = grid.local_hour
                inside = (h >= first) & (h < stop) if first < stop else (h >= first) | (h < stop)
                on_day = {"all": True, "weekend": grid.weekend, "weekday": ~grid.weekend}[days]
                import_price[plan][inside & on_day] = price
        cases = [(plan, sorted(hs), a, b) for (plan, a, b), hs in houses.items() if a < b]
        return cls(import_price, export_price, cases)

    def sql(self, grid: HourGrid):
        """The plan of a house rollup row (NULL: no tariff); a tariff valid over the whole grid needs no
        time test."""
        r = EnergyRollup
        if not self.cases:
            return literal(None)
        whens = []
        for plan, houses, since, until in self.cases:
            times = [r.bucket_start >= since] if since > grid.start else []
            times += [r.bucket_start < until] if until < grid.end else []
            whens.append((and_(*times, r.entity_id.in_(houses)), plan))
        return case(*whens, else_=None)


def _energy(session, result, grid, houses, tariffs, co2_constant, hourly_co2, per_house, timezone) -> None:
    """Import and export per plan and rollup row in SQL (with the hour's stored intensity), priced here."""
    r = EnergyRollup
    plans = Plans.of(tariffs, grid, timezone)
    daily_prices = result.group == "day" and not hourly_co2 and not any(t.periods for t in tariffs)
    spans = grid.spans(days=daily_prices)
    in_spans = or_(
        *(and_(r.resolution == res, r.bucket_start >= a, r.bucket_start < b) for res, a, b in spans)
    )
    where = [r.entity_kind == "house", in_spans]
    if houses is not None:
        where.append(r.entity_id.in_(houses))
    plan = plans.sql(grid).label("plan")
    keys = (
        [r.entity_id, plan, r.bucket_start.label("at")] if per_house else [plan, r.bucket_start.label("at")]
    )
    sums = (
        select(*keys, func.sum(r.import_wh), func.sum(r.export_wh)).where(*where).group_by(*keys).subquery()
    )
    gi = GridIntensity
    stmt = select(sums, gi.g_per_kwh if hourly_co2 else literal(None))
    if hourly_co2:
        stmt = stmt.outerjoin(gi, and_(gi.hour == sums.c.at, gi.hour >= grid.start, gi.hour < grid.end))
    rows = session.connection().execute(stmt).all()  # Core rows: the ORM's would cost more than the query
    if not rows:
        return
    *owners, plan_of, times, imp, exp, g_per_kwh = zip(*rows, strict=True)
    at = grid.index(times)
    as_float = lambda values: np.array(values, dtype=float)  # noqa: E731  (None -> NaN)
    intensity = as_float(g_per_kwh)
    if co2_constant is not None:
        intensity[np.isnan(intensity)] = co2_constant
    plan_row = np.nan_to_num(as_float(plan_of), nan=-1).astype(np.int64)  # -1: no tariff
    imp, exp = as_float(imp), as_float(exp)
    frame = pd.DataFrame({
        "key": at if result.group == "hour" else grid.local_day[at],
        "imp": imp,
        "exp": exp,
        "energy": imp * plans.import_price[plan_row, at],
        "credit": exp * plans.export_price[plan_row],
        "co2": imp * intensity,
    })  # fmt: skip
    if per_house:
        frame["house"] = np.array(owners[0], dtype=np.int64)
    sums = frame.groupby(["house", "key"] if per_house else "key").sum(min_count=1)
    names = grid.bucket_names(result.group, timezone)
    for index, (imp_wh, exp_wh, energy, credit, co2) in zip(sums.index, sums.to_numpy(), strict=True):
        owner, key = index if per_house else (None, index)
        when = names[int(key)]
        result.buckets[(int(owner), when) if per_house else when] = Bucket(
            import_kwh=float(imp_wh) / 1000.0,
            export_kwh=float(exp_wh) / 1000.0,
            energy_cost=None if np.isnan(energy) else float(energy) / 1000.0,
            feed_in_credit=None if np.isnan(credit) else float(credit) / 1000.0,
            co2_kg=None if np.isnan(co2) else float(co2) / 1e6,
        )


def _standing(
    result: CostResult, grid: HourGrid, tariffs: list[PricedTariff], now: datetime, per_house, timezone
) -> None:
    """Each tariff's standing charge, spread over the hours of each local day (23, 24 or 25), for the
    hours of the grid that have begun. Houses sharing a charge and validity are done in one pass."""
    begun = grid.hours < pd.Timestamp(now)
    days, day_slot = np.unique(grid.local_day, return_inverse=True)
    per_hour = 1.0 / np.array([_day_hours(int(d), timezone) for d in days])[day_slot]
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
