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

Redis when REDIS_URL is set (shared by the web workers and the forecast workers), else a small
in-process table (the embedded `make run`, where jobs run in the app's own threads). A cache that
cannot be reached is a miss, never an error: the forecast is then computed as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime

import pandas as pd

log = logging.getLogger(__name__)

PREFIX = "aggregator:forecast:v1:"
SETTLE_S = 90  # late readings for the interval before an origin: how long we wait for them
MEMORY_ENTRIES = 512


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


class RedisForecastCache:
    def __init__(self, redis_url: str):
        from redis import Redis

        # short timeouts: a slow cache must not make a page slower than computing the forecast
        self.redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def get(self, key: str) -> dict | None:
        from redis.exceptions import RedisError

        try:
            raw = self.redis.get(key)
        except RedisError as exc:
            log.warning("Forecast cache unavailable (%s): computing instead", exc.__class__.__name__)
            return None
        return None if raw is None else json.loads(raw)

    def put(self, key: str, value: dict, ttl: int) -> None:
        from redis.exceptions import RedisError

        try:
            self.redis.set(key, json.dumps(value, separators=(",", ":")), ex=ttl)
        except RedisError as exc:
            log.warning("Could not cache a forecast (%s)", exc.__class__.__name__)


class MemoryForecastCache:
    """In-process, least recently used first out, with expiry: the embedded single-process setup."""

    def __init__(self, entries: int = MEMORY_ENTRIES):
        self.entries = entries
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            expires, raw = hit
            if expires <= time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
        return json.loads(raw)  # a copy: callers may not change what others read

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def put(self, key: str, value: dict, ttl: int) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + ttl, json.dumps(value))
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)


_caches: dict[str | None, RedisForecastCache | MemoryForecastCache] = {}
_caches_lock = threading.Lock()


def forecast_cache(settings) -> RedisForecastCache | MemoryForecastCache:
    """One cache per Redis URL and process (its connection pool is reused by every request)."""
    url = settings.redis_url
    with _caches_lock:
        if url not in _caches:
            _caches[url] = RedisForecastCache(url) if url else MemoryForecastCache()
        return _caches[url]
