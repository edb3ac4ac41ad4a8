"""Summary statistics per local day, ISO week or month for a scope (the Exports page and
`GET /api/v1/exports/summary`), read from the rollups so a three-year export costs O(days x houses).
The columns' definitions, the widening of a range to whole local days and the pseudonymous per-house rows
of third-party apps: docs/data-rules.md, "Exports".
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, cast, func, select, text
from sqlalchemy.orm import Session

from dashboard.clock import local_midnight_utc, utcnow
from dashboard.crypto import pseudonym_key
from dashboard.errors import ValidationFailed
from dashboard.privacy import check_aggregate, check_community_visible, consenting_houses
from dashboard.queries import fleet_rows, kwh, scope_filter, whole_fleet
from dashboard.rollups import LocalDayBuckets
from dashboard.schema import VOLTAGE_OUTSIDE, EnergyRollup
from dashboard.scope import Scope

PERIODS = ("daily", "weekly", "monthly")
MAX_RANGE = timedelta(days=3 * 365 + 1)  # three years, one of them a leap year
COLUMNS = (
    "period",
    "period_start",
    "period_end",
    "hours",
    "consumption_kwh",
    "production_kwh",
    "net_kwh",
    "avg_kw",
    "peak_kw",
    "voltage_event_intervals",
    "mean_power_factor",
)
HOUSE_COLUMN = "house_id"  # inserted after period_end in per-house exports
# Rounded for people (the Exports page's table and its CSV download): kWh and hours to 10 Wh and 36 s,
# kW and power factor to 3 decimals. The API (JSON and CSV) keeps the full precision of `summary`.
PEOPLE_DECIMALS = {
    "hours": 2,
    "consumption_kwh": 2,
    "production_kwh": 2,
    "net_kwh": 2,
    "avg_kw": 3,
    "peak_kw": 3,
    "mean_power_factor": 3,
}


@dataclass
class _DayStats:
    consumption_wh: float = 0.0
    production_wh: float = 0.0
    pf_sum: float = 0.0
    pf_count: int = 0
    peak_wh: float | None = None  # the day's largest 15-minute consumption
    voltage_intervals: int = 0
    has_energy: bool = False


@dataclass(frozen=True)
class LocalDay:
    day: date
    start: datetime  # naive UTC of local midnight
    end: datetime  # naive UTC of the next local midnight

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0

    def elapsed_hours(self, now: datetime) -> float:
        """The day's hours before `now` (naive UTC): all of a past day, a part of today, none of a future
        day. Wall-clock time, not the newest reading: a gap shortens no day, as in a finished one."""
        return max(0.0, (min(self.end, now) - self.start).total_seconds() / 3600.0)


@dataclass
class Summary:
    period: str
    timezone: str
    per_house: bool
    pseudonymous: bool
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    start: datetime | None = None  # naive UTC: the first day's local midnight (the range's days, whole)
    end: datetime | None = None  # naive UTC: the local midnight after the last day


def local_days(start: datetime, end: datetime, timezone: str) -> list[LocalDay]:
    """Every local day [start, end) touches (naive UTC bounds), from the one `start` falls in."""
    zone = ZoneInfo(timezone)
    day = start.replace(tzinfo=UTC).astimezone(zone).date()
    out = []
    midnight = local_midnight_utc(day, zone)
    while midnight < end:
        following = local_midnight_utc(day + timedelta(days=1), zone)
        out.append(LocalDay(day, midnight, following))
        day, midnight = day + timedelta(days=1), following
    return out


def period_label(day: date, period: str) -> str:
    if period == "daily":
        return day.isoformat()
    if period == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def pseudonym(house_id: int, secret_key: str) -> str:
    """A stable, keyed, one-way id for a house: the same house gives the same pseudonym on every call."""
    digest = hmac.new(pseudonym_key(secret_key), f"house:{house_id}".encode(), hashlib.sha256).hexdigest()
    return "h-" + digest[:16]


def check_request(period: str, start: datetime, end: datetime) -> None:
    problems = []
    if period not in PERIODS:
        problems.append({"field": "period", "message": "one of daily, weekly, monthly"})
    if end <= start:
        problems.append({"field": "end", "message": "must be after start"})
    elif end - start > MAX_RANGE:
        problems.append({"field": "end", "message": "at most three years (1096 days) per export"})
    if problems:
        raise ValidationFailed(details=problems)


# ---- queries ------------------------------------------------------------------------------------------


def _day_rollups(session, where, per_house: bool, first: datetime, last: datetime) -> list[tuple]:
    """(entity or None, local-midnight bucket, consumption, production, pf_sum, pf_count)."""
    r = EnergyRollup
    key = r.entity_id if per_house else None
    columns = [r.bucket_start, func.sum(r.consumption_wh), func.sum(r.production_wh)]
    columns += [func.sum(r.pf_sum), func.sum(r.pf_count)]
    stmt = select(*([key] if per_house else []), *columns).where(
        r.resolution == "day", r.bucket_start >= first, r.bucket_start < last, where
    )
    stmt = stmt.group_by(*([key] if per_house else []), r.bucket_start)
    rows = session.execute(stmt).all()
    return [tuple(row) if per_house else (None, *row) for row in rows]


def _local_day_sql(column, timezone: str):
    """PostgreSQL: the local date of a naive-UTC timestamp column."""
    return cast(func.timezone(timezone, func.timezone("UTC", column)), Date)


def _peaks_postgres(session, sums, per_house, first, last, timezone) -> Iterable[tuple]:
    """(entity or None, local date, the day's largest 15-minute consumption in Wh), grouped in the database.

    Per house: each house's own largest quarter. Otherwise the aggregate's: its quarters summed over the
    `sums` rows first (one row per quarter when they are the fleet's pre-summed rollups)."""
    r = EnergyRollup
    window = and_(r.resolution == "15min", r.bucket_start >= first, r.bucket_start < last, sums)
    if per_house:
        day = _local_day_sql(r.bucket_start, timezone)
        stmt = select(r.entity_id, day, func.max(r.consumption_wh)).where(window).group_by(r.entity_id, day)
        return session.execute(stmt).all()
    quarters = (
        select(r.bucket_start.label("bucket"), func.sum(r.consumption_wh).label("wh"))
        .where(window)
        .group_by(r.bucket_start)
        .subquery()
    )
    day = _local_day_sql(quarters.c.bucket, timezone)
    stmt = select(day, func.max(quarters.c.wh)).group_by(day)
    return [(None, *row) for row in session.execute(stmt).all()]


def _local_date_of(timezone: str):
    """A naive-UTC 15-minute bucket start -> its local date, as the day rollups bucket it."""
    bucket_day, zone = LocalDayBuckets(timezone), ZoneInfo(timezone)
    return lambda bucket: bucket_day(bucket).replace(tzinfo=UTC).astimezone(zone).date()


def _peaks_python(session, sums, per_house, first, last, timezone) -> Iterable[tuple]:
    """The same as the PostgreSQL path, grouped here (the embedded SQLite has no time zones)."""
    r = EnergyRollup
    local_date = _local_date_of(timezone)
    quarters: dict[tuple, float] = {}  # (entity, bucket) -> Wh
    stmt = select(r.entity_id, r.bucket_start, r.consumption_wh).where(
        r.resolution == "15min", r.bucket_start >= first, r.bucket_start < last, sums
    )
    for entity, bucket, wh in session.execute(stmt).yield_per(10_000):
        key = (entity if per_house else None, bucket)
        quarters[key] = quarters.get(key, 0.0) + (wh or 0.0)
    peaks: dict[tuple, float] = {}
    for (entity, bucket), wh in quarters.items():
        key = (entity, local_date(bucket))
        peaks[key] = max(peaks.get(key, wh), wh)
    return [(entity, day, peak) for (entity, day), peak in peaks.items()]


def _voltage_intervals(session, where, per_house, first, last, timezone) -> Iterable[tuple]:
    """(entity or None, local date, 15-minute intervals outside 0.9-1.1 Un), counted per meter entity.

    Reads only the out-of-limit rows, through the partial index ix_rollups_voltage_outside (whose
    predicate this repeats word for word, so SQLite can use it too)."""
    r = EnergyRollup
    outside = and_(
        r.resolution == "15min",
        r.bucket_start >= first,
        r.bucket_start < last,
        where,
        text(f"({VOLTAGE_OUTSIDE})"),
    )
    local_date = _local_date_of(timezone)
    counts: dict[tuple, int] = {}
    for entity, bucket in session.execute(select(r.entity_id, r.bucket_start).where(outside)).yield_per(
        10_000
    ):
        key = (entity if per_house else None, local_date(bucket))
        counts[key] = counts.get(key, 0) + 1
    return [(entity, day, n) for (entity, day), n in counts.items()]


# ---- the summary --------------------------------------------------------------------------------------


def summary(
    session: Session,
    scope: Scope,
    period: str,
    start: datetime,
    end: datetime,
    timezone: str,
    secret_key: str,
    house_id: int | None = None,
    community_id: int | None = None,
    per_house: bool = False,
    min_houses: int = 1,
    now: datetime | None = None,
) -> Summary:
    """Summary rows per period (and per house when `per_house`) in [start, end) (naive-UTC bounds).

    Third-party apps (docs/privacy.md): a community of fewer than `min_houses` houses is unknown to them,
    an aggregate row needs at least `min_houses` houses with readings on each of its local days, and
    per-house rows come only from houses whose owners consented (`share_with_third_parties`).

    `now` (naive UTC, default the clock's) ends the unfinished period: its `hours` and `avg_kw` count
    only the hours elapsed so far."""
    now = utcnow() if now is None else now
    check_request(period, start, end)
    check_community_visible(session, scope, min_houses, community_id)
    where = scope_filter(session, scope, house_id, community_id)  # NotFound / Forbidden first
    if per_house:
        where = and_(where, EnergyRollup.entity_kind == "house")
        if not scope.per_house_allowed:
            where = and_(where, EnergyRollup.entity_id.in_(consenting_houses()))
    # energy and peaks are sums: the fleet's pre-summed rollups when the scope is the whole fleet
    sums = fleet_rows() if not per_house and whole_fleet(scope, house_id, community_id) else where
    pseudonymous = per_house and not scope.per_house_allowed
    columns = list(COLUMNS)
    if per_house:
        columns.insert(3, HOUSE_COLUMN)
    out = Summary(period, timezone, per_house, pseudonymous, columns)
    days = local_days(start, end, timezone)
    if not days:
        return out
    first, last = days[0].start, days[-1].end
    out.start, out.end = first, last
    if not per_house:  # days for the sums, quarters for the peaks (a peak is one quarter's aggregate)
        check_aggregate(session, scope, min_houses, community_id, "day", first, last)
        check_aggregate(session, scope, min_houses, community_id, "15min", first, last)
    by_midnight = {d.start: d.day for d in days}
    zone = ZoneInfo(timezone)

    stats: dict[tuple, _DayStats] = {}
    for entity, bucket, cons, prod, pf_sum, pf_count in _day_rollups(session, sums, per_house, first, last):
        day = by_midnight.get(bucket) or bucket.replace(tzinfo=UTC).astimezone(zone).date()
        s = stats.setdefault((entity, day), _DayStats())
        s.consumption_wh += cons or 0.0
        s.production_wh += prod or 0.0
        s.pf_sum += pf_sum or 0.0
        s.pf_count += int(pf_count or 0)
        s.has_energy = True
    peaks = _peaks_postgres if session.get_bind().dialect.name == "postgresql" else _peaks_python
    for entity, day, peak_wh in peaks(session, sums, per_house, first, last, timezone):
        s = stats.setdefault((entity, day), _DayStats())
        if peak_wh is not None:
            s.peak_wh = peak_wh if s.peak_wh is None else max(s.peak_wh, peak_wh)
    for entity, day, intervals in _voltage_intervals(session, where, per_house, first, last, timezone):
        stats.setdefault((entity, day), _DayStats()).voltage_intervals += intervals

    periods: dict[str, list[LocalDay]] = {}
    for d in days:
        periods.setdefault(period_label(d.day, period), []).append(d)
    entities = sorted({entity for entity, _day in stats}, key=lambda e: -1 if e is None else e)
    labels = {e: (pseudonym(e, secret_key) if pseudonymous else e) for e in entities}
    for label, members in periods.items():
        rows = []
        for entity in entities:
            day_stats = [stats[(entity, d.day)] for d in members if (entity, d.day) in stats]
            if not any(s.has_energy for s in day_stats):
                continue
            row = _row(label, members, day_stats, now) | {HOUSE_COLUMN: labels[entity]}
            rows.append({column: row[column] for column in columns})  # in column order
        if pseudonymous:  # the order of real ids must not show through
            rows.sort(key=lambda row: row[HOUSE_COLUMN])
        out.rows.extend(rows)
    return out


def _row(label: str, members: list[LocalDay], day_stats: list[_DayStats], now: datetime) -> dict:
    hours = sum(d.elapsed_hours(now) for d in members)
    consumption_wh = sum(s.consumption_wh for s in day_stats)
    production_wh = sum(s.production_wh for s in day_stats)
    peaks = [s.peak_wh for s in day_stats if s.peak_wh is not None]
    pf_count = sum(s.pf_count for s in day_stats)
    return {
        "period": label,
        "period_start": members[0].day.isoformat(),
        "period_end": (members[-1].day + timedelta(days=1)).isoformat(),
        "hours": round(hours, 6),
        "consumption_kwh": kwh(consumption_wh),
        "production_kwh": kwh(production_wh),
        "net_kwh": kwh(consumption_wh - production_wh),
        "avg_kw": kwh(consumption_wh / hours) if hours > 0 else None,
        "peak_kw": round(max(peaks) * 4.0 / 1000.0, 6) if peaks else None,
        "voltage_event_intervals": sum(s.voltage_intervals for s in day_stats),
        "mean_power_factor": round(sum(s.pf_sum for s in day_stats) / pf_count, 4) if pf_count else None,
    }


def _cell(_column: str, value) -> str:
    return "" if value is None else str(value)


def people_cell(column: str, value) -> str:
    """A value as people read it: PEOPLE_DECIMALS fixed decimals ("1.50"), other columns as they are."""
    decimals = PEOPLE_DECIMALS.get(column)
    if value is None or decimals is None:
        return _cell(column, value)
    return f"{round(value, decimals) + 0.0:.{decimals}f}"  # + 0.0: no "-0.00"


def csv_lines(result: Summary, for_people: bool = False) -> Iterator[str]:
    """The CSV one line at a time, so a long export starts arriving at once; `for_people` rounds."""
    cell = people_cell if for_people else _cell
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for values in [result.columns, *([cell(c, row[c]) for c in result.columns] for row in result.rows)]:
        writer.writerow(values)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
