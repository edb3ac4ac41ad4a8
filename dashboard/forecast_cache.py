"""Issued forecasts, kept per model version and origin, so a repeat view is a cache read and not a job.

A forecast is a function of the model version, its origin (the first interval it forecasts) and the
history before the origin. A version's object key is unique and immutable, so `(object key, origin)`
names one forecast for every caller whose data view of the slot is the same; a community slot read by a
caller who sees only some of its houses (a consumer) sums fewer houses, so its entries also carry a digest
of those houses (`data_view`). The answer is cached only after the caller's scope was checked, and a
cached answer is only ever looked up after the same checks, so the cache widens no one's access.

Late readings: the interval just before an origin can still receive readings for a short while after
the origin. A forecast computed within SETTLE_S of its origin is marked unsettled and kept only until
origin + SETTLE_S; after that the publisher (jobs.forecasting.publish_due, every 15 minutes) or the next
request computes it again with the late readings in, and that settled answer is kept for two steps.

The entries live in the services' TTL cache (dashboard/ttl_cache.py): Redis shared by the web and forecast
workers, or the embedded app's memory. A cache that cannot be reached is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

import pandas as pd

log = logging.getLogger(__name__)

PREFIX = "aggregator:forecast:v1:"
SETTLE_S = 90  # late readings for the interval before an origin: how long we wait for them


def data_view(scope, slot) -> str:
    """'' when every caller allowed to ask sees the same data for the slot (a house, all houses, or a
    community seen whole); else a digest of the caller's houses (a community seen in part)."""
    if slot.scope_kind != "community" or scope.all_houses:
        return ""
    ids = ",".join(str(h) for h in sorted(scope.house_ids or ()))
    return "h" + hashlib.sha256(ids.encode()).hexdigest()[:16]


def cache_key(object_key: str, origin: pd.Timestamp, view: str = "") -> str:
    utc = origin.tz_convert("UTC") if origin.tzinfo is not None else origin
    return f"{PREFIX}{object_key}|{utc.strftime('%Y-%m-%dT%H:%M:%SZ')}|{view}"


def is_settled(origin: pd.Timestamp, computed_at: datetime | None = None) -> bool:
    computed_at = computed_at or datetime.now(UTC)
    return (pd.Timestamp(computed_at) - origin).total_seconds() >= SETTLE_S


def ttl_s(origin: pd.Timestamp, step: pd.Timedelta, settled: bool, now: datetime | None = None) -> int:
    """Unsettled: until origin + SETTLE_S (at least 1 s). Settled: two steps (the origin has moved on by then)."""
    if not settled:
        now = now or datetime.now(UTC)
        return max(1, int(SETTLE_S - (pd.Timestamp(now) - origin).total_seconds()) + 1)
    return int(2 * step.total_seconds())
