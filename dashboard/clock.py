"""Time in one place. The database stores naive UTC; people read local days, which last 23 or 25 hours
across a DST change, so every local-day bound is computed here from the zone, never by adding 24 hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1)


def utcnow() -> datetime:
    """Naive UTC, the database's convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """Floor a naive-UTC time to a multiple of `step` since the Unix epoch (as the SQL buckets do)."""
    return ts - (ts - EPOCH) % step


def iso_utc(ts: datetime) -> str:
    """A naive-UTC time as the API writes it: '2026-12-07T06:00:00Z'."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_local(ts_utc: str | datetime, timezone: str) -> datetime:
    """An ISO 'Z' string or naive-UTC datetime as a naive local wall-clock time (for axes and tables)."""
    if isinstance(ts_utc, str):
        ts = datetime.fromisoformat(ts_utc.replace("Z", "+00:00"))
    else:
        ts = ts_utc.replace(tzinfo=UTC) if ts_utc.tzinfo is None else ts_utc
    return ts.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def local_text(ts_utc: str | datetime | None, timezone: str, missing: str = "-") -> str:
    """'YYYY-MM-DD HH:MM' local wall-clock time, `missing` for None."""
    return missing if ts_utc is None else f"{to_local(ts_utc, timezone):%Y-%m-%d %H:%M}"


def local_today(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def local_midnight_utc(day: date, timezone: str | ZoneInfo) -> datetime:
    """The naive-UTC instant of a local midnight (DST-aware: a local day may last 23 or 25 hours)."""
    zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def local_days_bounds(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) local, as naive-UTC bounds (both days included)."""
    return local_midnight_utc(first, timezone), local_midnight_utc(last + timedelta(days=1), timezone)
