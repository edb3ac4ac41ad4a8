"""Waiting out a clock boundary in tests: what a test computes from "now" and what the app (or the demo
server) computes a few seconds later must fall in the same bucket, hour or local day."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1)
APP_ZONE = "Europe/Athens"  # the test apps' and the demo server's TIMEZONE (the default)


def clear_of(step: timedelta, margin_s: float = 60) -> datetime:
    """Naive-UTC now, after waiting out a boundary of `step` (a multiple of it since the epoch, as the app's
    buckets: a quarter hour, an hour) less than `margin_s` away: what a test computes now and what the app
    computes within the next `margin_s` seconds fall in the same bucket. Local midnight in Europe/Athens is a
    UTC hour boundary, so `clear_of(timedelta(hours=1))` also keeps "today"."""
    now = datetime.now(UTC).replace(tzinfo=None)
    left = (step - (now - EPOCH) % step).total_seconds()
    if left < margin_s:
        time.sleep(left + 1)
        now = datetime.now(UTC).replace(tzinfo=None)
    return now


def local_today_clear_of_midnight(timezone: str = APP_ZONE, margin_s: float = 60) -> date:
    """The app's local date, after waiting out a local midnight less than `margin_s` away: a test that reads
    "today" and then has the app compute its own (presets, "next", the picker's last day) is over before the
    day changes. `margin_s` must exceed the test's own length (and fit pytest's timeout)."""
    zone = ZoneInfo(timezone)
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), datetime.min.time(), zone)
    left = (midnight.astimezone(UTC) - now).total_seconds()
    if left < margin_s:
        time.sleep(left + 1)
    return datetime.now(zone).date()
