"""Issued forecasts, kept per model version and origin in the services' TTL cache, so a repeat view is a
cache read and not a job. Keys carry the caller's data view of a community; an answer computed within
SETTLE_S of its origin is kept only until the late readings are in. Details: docs/data-rules.md,
"Issued forecasts".
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
