"""Pricing pieces of the cost (dashboard/costs.py): the hour grid of a range in local time, the tariffs as
plans (same prices, one plan) with a price for every hour, and the two ways to sum priced import, export
and CO2 per bucket (numpy over sums per plan and row; SQL with the prices as arrays, PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Grouping

from dashboard.schema import EnergyRollup
from dashboard.schema_features import DAY_SLOTS, HOUSE_DAY_HOURS, Tariff, TariffPeriod

EPOCH_DAY = date(1970, 1, 1)
HOUR_S = 3600


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


def tariffs_in_range(
    session: Session, houses: list[int] | None, first: date, last: date
) -> list[PricedTariff]:
    t, p = Tariff, TariffPeriod
    where = [t.valid_from <= last, or_(t.valid_to.is_(None), t.valid_to >= first)]
    if houses is not None:
        where.append(t.house_id.in_(houses))
    conn = session.connection()
    rows = conn.execute(select(t.id, t.house_id, t.import_price, t.export_price, t.standing_charge_per_day,
                               t.valid_from, t.valid_to, t.kind).where(*where)).all()  # fmt: skip
    periods: dict[int, list] = {}
    if any(row.kind == "tou" for row in rows):  # only time-of-use tariffs have periods
        ids = select(t.id).where(*where, t.kind == "tou").scalar_subquery()
        for row in conn.execute(
            select(p.tariff_id, p.days, p.start_hour, p.end_hour, p.import_price).where(p.tariff_id.in_(ids))
        ):
            periods.setdefault(row[0], []).append(tuple(row[1:]))
    return [PricedTariff(*row[1:7], periods=tuple(sorted(periods.get(row[0], ())))) for row in rows]


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

    def sql(self, grid: HourGrid, house=EnergyRollup.entity_id, at=EnergyRollup.bucket_start):
        """The plan of a house rollup row, or of a house_day_hours row given its columns (NULL: no tariff); a
        tariff valid over the whole grid needs no time test."""
        if not self.cases:
            return cast(null(), Integer)
        whens = []
        for plan, houses, since, until in self.cases:
            times = [at >= since] if since > grid.start else []
            times += [at < until] if until < grid.end else []
            whens.append((and_(*times, house.in_(houses)), plan))
        return case(*whens, else_=None)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def hour_of(session: Session, column, grid: HourGrid):
    """A naive-UTC hour column as its position in the grid, in SQL (SQLite keeps timestamps as text)."""
    epoch = (
        func.date_part("epoch", column) if _postgres(session) else cast(func.strftime("%s", column), Integer)
    )
    return cast((epoch - int(grid.start.replace(tzinfo=UTC).timestamp())) / HOUR_S, Integer)


def fetch_columns(session: Session, stmt) -> list | None:
    """The statement's result as one sequence per column (None: no rows). On PostgreSQL each column comes
    as one array (array_agg keeps the rows' order across columns): a Python row per result row costs more
    than the query for a year of hours."""
    conn = session.connection()
    if _postgres(session):
        sub = stmt.subquery()
        row = conn.execute(select(*(func.array_agg(c) for c in sub.c))).one()
        return None if row[0] is None else list(row)
    rows = conn.execute(stmt).all()
    return list(zip(*rows, strict=True)) if rows else None


def priced_in_sql(session, grid, plans, intensity, where, group, per_house):
    """(house or None, key, import, export, energy cost, feed-in credit, CO2) per bucket, summed in SQL."""
    r, n = EnergyRollup, len(grid.hours)

    def array(name, values, kind=Float):  # NaN: none (nullif below makes it NULL); parenthesized to index
        values = [float(v) for v in values] if kind is Float else [int(v) for v in values]
        return Grouping(bindparam(name, values, type_=ARRAY(kind, zero_indexes=True)))

    hour = hour_of(session, r.bucket_start, grid)
    nan = literal_column("'NaN'::float8")
    price = func.nullif(array("prices", plans.import_price[:-1].ravel())[plans.sql(grid) * n + hour], nan)
    feed_in = func.nullif(array("feed_in", plans.export_price[:-1])[plans.sql(grid)], nan)
    g = func.nullif(array("intensity", intensity)[hour], nan)
    key = (hour if group == "hour" else array("days", grid.local_day, Integer)[hour]).label("key")
    keys = [r.entity_id, key] if per_house else [key]
    stmt = select(*keys, func.sum(r.import_wh), func.sum(r.export_wh), func.sum(r.import_wh * price),
                  func.sum(r.export_wh * feed_in), func.sum(r.import_wh * g)).where(*where).group_by(*keys)  # fmt: skip
    for row in session.connection().execute(stmt):
        yield row if per_house else (None, *row)


def priced_here(session, grid, plans, intensity, where, group, per_house, day_sums=None):
    """The same, from sums per plan and rollup row priced with numpy: the fleet's (few rows per plan and
    hour), and per house on SQLite (no arrays). `day_sums`: more (plan, hour, import, export) sums, of whole
    local days (`day_hour_sums`), not per house."""
    r = EnergyRollup
    plan = plans.sql(grid).label("plan")
    keys = [r.entity_id, plan, r.bucket_start] if per_house else [plan, r.bucket_start]
    at = hour_of(session, r.bucket_start, grid).label("at")
    sums = select(*keys[:-1], at, func.sum(r.import_wh), func.sum(r.export_wh)).where(*where).group_by(*keys)
    columns = fetch_columns(session, sums) if where else None
    as_float = lambda values: np.array(values, dtype=float)  # noqa: E731  (None -> NaN)
    if columns is None:
        columns = [[]] * (4 + per_house)
    *owners, plan_of, at, imp, exp = columns
    at, imp, exp = np.array(at, dtype=np.int64), as_float(imp), as_float(exp)
    plan_row = np.nan_to_num(as_float(plan_of), nan=-1).astype(np.int64)  # -1: no tariff
    if day_sums is not None:
        pairs = zip((plan_row, at, imp, exp), day_sums, strict=True)
        plan_row, at, imp, exp = (np.concatenate(pair) for pair in pairs)
    if len(at) == 0:
        return
    frame = pd.DataFrame({
        "key": at if group == "hour" else grid.local_day[at],
        "imp": imp,
        "exp": exp,
        "energy": imp * plans.import_price[plan_row, at],
        "credit": exp * plans.export_price[plan_row],
        "co2": imp * intensity[at],
    })  # fmt: skip
    if per_house:
        frame["house"] = np.array(owners[0], dtype=np.int64)
    sums = frame.groupby(["house", "key"] if per_house else "key").sum(min_count=1)
    for index, values in zip(sums.index, sums.to_numpy(), strict=True):
        yield (*(index if per_house else (None, index)), *values)


def day_hour_sums(session, grid, plans, houses, first: datetime, last: datetime, group: str):
    """(plan, hour, import, export) sums of the houses' (None: all) local days [first, last) (midnights of
    the grid) from house_day_hours: SQL sums each slot per plan and day, numpy spreads them over the grid's
    hours, only over the slots that have an hourly row (as the hourly rows give them). With `group` "day",
    a day's export needs no hours: SQL sums it whole and it goes to the day's first slot."""
    h = HOUSE_DAY_HOURS.c
    plan = plans.sql(grid, h.house_id, h.day_start).label("plan")
    at = hour_of(session, h.day_start, grid).label("at")
    if _postgres(session):
        bits = [func.bit_or(h.hours)]
    else:  # SQLite has no bit_or
        bits = [func.max(h.hours.op("&")(1 << k)) for k in range(DAY_SLOTS)]
    exports = [h[f"e{k}"] for k in range(DAY_SLOTS)]
    exports = exports if group == "hour" else [sum(exports[1:], exports[0])]
    where = [h.day_start >= first, h.day_start < last]
    if houses is not None:
        where.append(h.house_id.in_(houses))
    stmt = select(plan, at, *bits, *(func.sum(h[f"i{k}"]) for k in range(DAY_SLOTS)),
                  *(func.sum(e) for e in exports)).where(*where).group_by(plan, h.day_start)  # fmt: skip
    rows = session.connection().execute(stmt).all()  # a row per plan and day: few (no array_agg needed)
    if not rows:
        return None
    columns = list(zip(*rows, strict=True))
    plan_of, start = columns[:2]
    mask = np.bitwise_or.reduce(np.array(columns[2 : 2 + len(bits)], dtype=np.int64), axis=0)
    columns = columns[2 + len(bits) :]
    imp = np.array(columns[:DAY_SLOTS], dtype=float).T  # days x slots
    exp = np.array(columns[DAY_SLOTS:], dtype=float).T
    slots = np.arange(DAY_SLOTS)
    present = (mask[:, None] >> slots) & 1 == 1
    if group != "hour":  # the whole export at the first slot present
        first_slot = np.argmax(present, axis=1)
        exp = np.zeros_like(imp)
        exp[np.arange(len(exp)), first_slot] = np.array(columns[DAY_SLOTS], dtype=float)
    hours = np.array(start, dtype=np.int64)[:, None] + slots
    plan_row = np.broadcast_to(np.nan_to_num(np.array(plan_of, dtype=float), nan=-1).astype(np.int64)[:, None],
                               present.shape)  # fmt: skip
    return plan_row[present], hours[present], imp[present], exp[present]


def day_hours(day_number: int, timezone: str) -> int:
    return round(
        (local_midnight(day_number + 1, timezone) - local_midnight(day_number, timezone)).total_seconds()
        / 3600
    )
