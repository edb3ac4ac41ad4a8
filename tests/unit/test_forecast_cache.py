"""The forecast cache's keys and lifetimes (dashboard/forecast_cache.py) and the in-process TTL table
(dashboard/ttl_cache.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboard.forecast_cache import (
    SETTLE_S,
    cache_key,
    data_view,
    is_settled,
    ttl_s,
)
from dashboard.model_store import Slot
from dashboard.scope import Scope
from dashboard.ttl_cache import MemoryCache

ORIGIN = pd.Timestamp("2026-11-25 16:00", tz="UTC")
HOUR = pd.Timedelta(hours=1)


def slot(kind: str, scope_id: int | None) -> Slot:
    return Slot("consumption", "next-24-hours", 24, kind, scope_id, "xgboost", "direct")


def test_a_key_names_one_version_origin_and_data_view():
    keys = {
        cache_key("models/a/v1.bin", ORIGIN),
        cache_key("models/a/v2.bin", ORIGIN),
        cache_key("models/a/v1.bin", ORIGIN + HOUR),
        cache_key("models/a/v1.bin", ORIGIN, "h0123"),
    }
    assert len(keys) == 4
    assert cache_key("models/a/v1.bin", ORIGIN) == cache_key(
        "models/a/v1.bin", ORIGIN.tz_convert("Europe/Athens")
    )


def test_only_a_community_seen_in_part_has_its_own_data_view():
    analyst = Scope(role="analyst")
    consumer = Scope(role="consumer", house_ids=frozenset({3, 1}), community_ids=frozenset({7}))
    other = Scope(role="consumer", house_ids=frozenset({2}), community_ids=frozenset({7}))
    assert data_view(analyst, slot("community", 7)) == ""
    assert data_view(analyst, slot("all", None)) == ""
    assert data_view(consumer, slot("house", 1)) == ""  # a house's data is the house, whoever asks
    partial = data_view(consumer, slot("community", 7))
    assert partial and partial != data_view(other, slot("community", 7))
    same = Scope(role="consumer", house_ids=frozenset({1, 3}), community_ids=frozenset({7}))
    assert data_view(same, slot("community", 7)) == partial


def test_a_forecast_is_settled_once_late_readings_had_time_to_arrive():
    early = ORIGIN + timedelta(seconds=SETTLE_S - 30)
    late = ORIGIN + timedelta(seconds=SETTLE_S + 1)
    assert not is_settled(ORIGIN, early.to_pydatetime())
    assert is_settled(ORIGIN, late.to_pydatetime())
    # unsettled: kept only until origin + SETTLE_S; settled: two steps
    assert ttl_s(ORIGIN, HOUR, settled=False, now=early.to_pydatetime()) == 31
    assert ttl_s(ORIGIN, HOUR, settled=True) == 7200
    assert ttl_s(ORIGIN, pd.Timedelta(minutes=15), settled=True) == 1800
    assert is_settled(pd.Timestamp("2026-06-19", tz="UTC"), datetime(2026, 11, 25, tzinfo=UTC))  # a backtest


def test_memory_cache_expires_copies_and_stays_bounded():
    cache = MemoryCache(entries=3)
    value = {"answer": {"version": "v1", "forecast": [{"timestamp": "t", "forecasted_energy_usage": 1.0}]}}
    cache.put("a", value, ttl=60)
    got = cache.get("a")
    assert got == value
    got["answer"]["version"] = "changed"  # a caller's change is not what the next caller reads
    assert cache.get("a")["answer"]["version"] == "v1"

    cache.put("short", value, ttl=1)
    time.sleep(1.05)
    assert cache.get("short") is None

    for key in ("b", "c", "d"):
        cache.put(key, value, ttl=60)
    assert cache.get("a") is None  # the least recently used went first
    assert all(cache.get(k) == value for k in ("b", "c", "d"))
    cache.clear()
    assert cache.get("b") is None


def test_the_publisher_issues_each_active_models_forecast_once(sqlite_app):
    """Embedded defaults (SQLite, a folder store, the in-process cache): `publish_forecasts` issues the
    current forecast of an active version, finds it cached the next time, and skips inactive ones."""
    from dashboard import forecasting
    from dashboard.context import bound
    from dashboard.scope import system_scope
    from dashboard.seed import seed_demo
    from jobs.forecasting import publish_forecasts

    svc = sqlite_app.server.extensions["aggregator"]
    end = pd.Timestamp.now(tz="UTC").floor("15min").to_pydatetime()
    seed_demo(svc.session_factory, "Europe/Athens", houses=2, days=21, end=end, progress=False)
    scope, store = system_scope(), svc.model_store
    task = forecasting.resolve_task(scope, "consumption", "next-24-hours", {})
    with svc.session_factory() as s:
        first, _, _ = forecasting.train(s, store, scope, task)
        second, version, _ = forecasting.train(s, store, scope, task)  # the active one; `first` is not
        s.commit()

    cache = svc.cache
    with bound(svc):  # as the in-process queue runs the publisher's jobs
        assert publish_forecasts([first, second, 10**6]) == {
            "issued": 1,
            "cached": 0,
            "skipped": 2,
            "failed": 0,
        }
    with svc.session_factory() as s:
        answer = forecasting.cached_forecast(s, cache, scope, task)
        assert answer is not None and answer["version"] == version and len(answer["forecast"]) == 24
        _, frame = forecasting.forecast(s, store, scope, task)  # what a forecast job would answer now
    assert answer["forecast"] == forecasting.forecast_rows(frame)
    with bound(svc):
        again = publish_forecasts([second])
    # settled answers are kept; one computed in the first SETTLE_S of its origin is computed again
    assert again == ({"issued": 0, "cached": 1, "skipped": 0, "failed": 0} if is_settled(task.origin())
                     else {"issued": 1, "cached": 0, "skipped": 0, "failed": 0})  # fmt: skip
