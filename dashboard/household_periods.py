"""The household view's periods (today so far, yesterday, this week, this month, this year) and the windows
they are compared with, as naive-UTC bounds computed in local wall-clock time (DST-aware).

Why wall-clock: "today so far vs yesterday up to the same time" means the same local time of day, not the
same number of hours: on the day the clocks go forward, 12:00 is 11 hours after midnight, on the day
before 12 hours. So a comparison window starts at the comparison period's local start and ends at the
current moment shifted by one period on the calendar (a day, 7 days, a month, a year; the 31st of a month
becomes the last day of a shorter one, 29 February the 28th), then both are converted to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.errors import ValidationFailed

TODAY, YESTERDAY, WEEK, MONTH, YEAR = "today", "yesterday", "week", "month", "year"
PERIODS = {
    TODAY: "Today so far",
    YESTERDAY: "Yesterday",
    WEEK: "This week",
    MONTH: "This month",
    YEAR: "This year",
}
QUARTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Window:
    """[start, end) in naive UTC, its label, and whether the period it stands for is over."""

    start: datetime
    end: datetime
    label: str
    complete: bool
    timezone: str | None = None  # whose local days the daily rollups hold: lets a window read them


def check_period(period: str | None) -> str:
    if period not in PERIODS:
        raise ValidationFailed(details=[{"field": "period", "message": "one of " + ", ".join(PERIODS)}])
    return period


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _local(ts_utc: datetime, zone: ZoneInfo) -> datetime:
    return ts_utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _months_back(day: date, months: int) -> date:
    """The same day `months` months earlier, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    first_next = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return date(year, month + 1, min(day.day, (first_next - timedelta(days=1)).day))


def shift(local: datetime, kind: str) -> datetime:
    """A local wall-clock time one period earlier on the calendar (`kind`: day, week, month, year)."""
    if kind == "day":
        return local - timedelta(days=1)
    if kind == "week":
        return local - timedelta(days=7)
    months = 1 if kind == "month" else 12
    return datetime.combine(_months_back(local.date(), months), local.time())


def _period_start(period: str, today: date) -> tuple[date, str]:
    """The local start day of a period and its calendar kind."""
    if period == TODAY:
        return today, "day"
    if period == YESTERDAY:
        return today - timedelta(days=1), "day"
    if period == WEEK:
        return today - timedelta(days=today.weekday()), "week"
    if period == MONTH:
        return today.replace(day=1), "month"
    return today.replace(month=1, day=1), "year"


def _next_start(first: date, kind: str) -> date:
    if kind == "day":
        return first + timedelta(days=1)
    if kind == "week":
        return first + timedelta(days=7)
    if kind == "month":
        return _months_back(first, -1)
    return first.replace(year=first.year + 1)


def period_window(period: str, now: datetime, timezone: str, whole_quarters: bool = False) -> Window:
    """The chosen period up to `now` (naive UTC): everything stored so far, or with `whole_quarters` only
    the complete quarter hours (so it can be set beside a comparison window of the same elapsed part)."""
    zone = ZoneInfo(timezone)
    check_period(period)
    first, kind = _period_start(period, _local(now, zone).date())
    start = _utc(datetime.combine(first, datetime.min.time()), zone)
    full_end = _utc(datetime.combine(_next_start(first, kind), datetime.min.time()), zone)
    cut = now - (now - datetime(1970, 1, 1)) % QUARTER if whole_quarters else now
    end = min(full_end, cut) if period != YESTERDAY else full_end
    return Window(start, end, PERIODS[period], complete=end >= full_end, timezone=timezone)


def comparison_windows(period: str, now: datetime, timezone: str) -> dict[str, Window]:
    """What the period is compared with: `previous` (the previous day, week, month or year) and
    `last_year` (the same period a year earlier; for "this year" the same as `previous`, so left out).
    An unfinished period is compared over the same elapsed part, up to the same local wall-clock time."""
    zone = ZoneInfo(timezone)
    current = period_window(period, now, timezone, whole_quarters=True)
    first_local, end_local = _local(current.start, zone), _local(current.end, zone)
    _first, kind = _period_start(period, first_local.date())
    out = {}
    shifts = {"previous": kind} | ({} if kind == "year" else {"last_year": "year"})
    for key, by in shifts.items():
        start_local = shift(first_local, by)
        if current.complete:
            stop_local = shift(
                datetime.combine(_next_start(first_local.date(), kind), datetime.min.time()), by
            )
        else:
            stop_local = shift(end_local, by)
            # "up to the same day of the month" may run past a shorter previous month's end: cap at it
            period_end = datetime.combine(_next_start(start_local.date(), kind), datetime.min.time())
            stop_local = min(stop_local, period_end)
        label = _label(key, kind, start_local, stop_local, current.complete)
        out[key] = Window(_utc(start_local, zone), _utc(stop_local, zone), label, current.complete, timezone)
    return out


def _label(key: str, kind: str, start: datetime, stop: datetime, complete: bool) -> str:
    names = {
        "day": "Previous day",
        "week": "Previous week",
        "month": "Previous month",
        "year": "Previous year",
    }
    text = names[kind] if key == "previous" else "Same period last year"
    if complete:
        return f"{text} ({start:%Y-%m-%d})" if kind == "day" else f"{text} (from {start:%Y-%m-%d})"
    return f"{text} ({start:%Y-%m-%d} to {stop:%Y-%m-%d %H:%M})"
