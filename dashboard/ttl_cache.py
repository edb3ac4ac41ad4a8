"""A small JSON cache with expiry, shared by the app's faces and jobs: issued forecasts
(dashboard/forecast_cache.py) and the reuse map of background scans (jobs/analytics.py).

Redis when REDIS_URL is set (shared by every web and job worker), else an in-process table (the embedded
`make run`, where jobs run in the app's own threads). Redis that cannot be reached is a miss, never an
error.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict

log = logging.getLogger(__name__)
MEMORY_ENTRIES = 512


class RedisCache:
    def __init__(self, redis_url: str):
        from redis import Redis

        # short timeouts: a slow cache must not make a page slower than computing the forecast
        self.redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def get(self, key: str) -> dict | None:
        from redis.exceptions import RedisError

        try:
            raw = self.redis.get(key)
        except RedisError as exc:
            log.warning("Cache unavailable (%s): a miss", exc.__class__.__name__)
            return None
        return None if raw is None else json.loads(raw)

    def put(self, key: str, value: dict, ttl: int) -> None:
        from redis.exceptions import RedisError

        try:
            self.redis.set(key, json.dumps(value, separators=(",", ":")), ex=ttl)
        except RedisError as exc:
            log.warning("Could not write to the cache (%s)", exc.__class__.__name__)

    def delete_prefix(self, prefix: str) -> int:
        """Drop every entry whose key starts with `prefix` (a deleted model's forecasts); how many."""
        from redis.exceptions import RedisError

        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
        try:
            keys = list(self.redis.scan_iter(match=pattern, count=1000))
            return self.redis.delete(*keys) if keys else 0
        except RedisError as exc:
            log.warning("Could not delete from the cache (%s)", exc.__class__.__name__)
            return 0


class MemoryCache:
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

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            keys = [key for key in self._data if key.startswith(prefix)]
            for key in keys:
                del self._data[key]
        return len(keys)

    def put(self, key: str, value: dict, ttl: int) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + ttl, json.dumps(value))
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)


TTLCache = RedisCache | MemoryCache


def make_ttl_cache(redis_url: str | None) -> TTLCache:
    """Redis when the app has it (shared by every web and job worker), else this process's memory. Built
    once per process with its services (dashboard/context.py), so its connection pool is reused."""
    return RedisCache(redis_url) if redis_url else MemoryCache()
