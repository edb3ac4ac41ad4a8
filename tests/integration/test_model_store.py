"""Model store and forecasting service on the real PostgreSQL and S3 server: encrypted versions, an
active pointer with rollback, failover to the previous version, and scope-checked parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dashboard import forecasting
from dashboard.crypto import decrypt
from dashboard.errors import ValidationFailed
from dashboard.maintenance import prune_run_log
from dashboard.model_store import ModelStore, ModelUnavailable
from dashboard.schema import ModelVersion
from dashboard.scope import Scope, system_scope
from dashboard.storage import object_store_from_settings

END = datetime(2026, 6, 20, 0, 0, tzinfo=UTC)
AS_OF = {"as_of": "2026-06-19T00:00:00Z"}


@pytest.fixture
def store(s3_settings):
    return ModelStore(s3_settings, object_store_from_settings(s3_settings))


@pytest.fixture
def seeded(app, factory, pg_snapshots):
    pg_snapshots.demo(factory, "Europe/Athens", houses=4, days=24, end=END)
    return factory


def task(scope=None, product="next-24-hours", **params):
    return forecasting.resolve_task(scope or system_scope(), "consumption", product, AS_OF | params)


def test_trained_model_is_stored_encrypted_active_and_forecasts(seeded, store):
    with seeded() as s:
        model_id, version, report = forecasting.train(s, store, system_scope(), task())
        s.commit()
        row = s.get(ModelVersion, model_id)
        assert row.is_active and row.version == version and row.data_end < datetime(2026, 6, 19)
        blob = store.objects.get_bytes(row.object_key)
        assert b"XGBRegressor" not in blob  # ciphertext, not a pickle
        assert b"XGBRegressor" in decrypt(store.key, blob, row.object_key)
        assert store.objects.get_metadata(row.object_key)["encryption"] == "AES-256-GCM"
        assert {"mse", "mae", "r2", "mape", "coverage"} <= set(report.metrics)
        used, frame = forecasting.forecast(s, store, system_scope(), task())
    assert used == version
    assert len(frame) == 24 and str(frame.index[0]) == "2026-06-19 00:00:00+00:00"
    assert ((frame["lower"] <= frame["point"]) & (frame["point"] <= frame["upper"])).all()


def test_activate_rolls_back_and_a_broken_active_version_falls_back(seeded, store):
    with seeded() as s:
        first, _v1, _ = forecasting.train(s, store, system_scope(), task())
        second, v2, _ = forecasting.train(s, store, system_scope(), task())
        s.commit()
        slot = task().slot
        assert store.load_active(s, slot)[0].id == second
        store.activate(s, first)
        s.commit()
        assert store.load_active(s, slot)[0].id == first
        store.activate(s, second)
        # the active object disappears from the store: the previous version answers
        store.objects.delete(s.get(ModelVersion, second).object_key)
        fresh = ModelStore(store_settings_of(store), store.objects)
        assert fresh.load_active(s, slot)[0].id == first
        store.objects.put_bytes(s.get(ModelVersion, first).object_key, b"AGM1" + b"\x00" * 40)  # tampered
        with pytest.raises(ModelUnavailable):
            ModelStore(store_settings_of(store), store.objects).load_active(s, slot)
        assert v2


def store_settings_of(store):
    """Settings with the same key: a new process (empty cache) reading the same store."""
    import tempfile

    from tests.conftest import TEST_SECRET, make_settings

    return make_settings(tempfile.mkdtemp(), SECRET_KEY=TEST_SECRET)


@pytest.mark.parametrize(
    ("product", "params", "field"),
    [
        ("short-term", {"horizon": 0}, "horizon"),
        ("short-term", {"horizon": 21}, "horizon"),
        ("short-term", {"horizon": "eight"}, "horizon"),
        ("short-term", {}, "horizon"),
        ("next-24-hours", {"model": "prophet"}, "model"),
        ("next-24-hours", {"strategy": "magic"}, "strategy"),
        ("next-24-hours", {"as_of": "yesterday"}, "as_of"),
    ],
)
def test_bad_parameters_name_the_field(product, params, field):
    with pytest.raises(ValidationFailed) as err:
        forecasting.resolve_task(system_scope(), "consumption", product, params)
    assert err.value.details[0]["field"] == field


def test_scope_rules_for_forecast_parameters():
    consumer = Scope(role="consumer", user_id=5, house_ids=frozenset({3}), community_ids=frozenset())
    assert (
        task(consumer).slot.scope_kind == "house" and task(consumer).slot.scope_id == 3
    )  # default: own house
    with pytest.raises(ValidationFailed):
        task(consumer, house_id=4)
    with pytest.raises(ValidationFailed):
        task(consumer, community_id=1)
    partner = Scope(role="third_party", api_key_id=1)
    assert task(partner).slot.scope_kind == "all"
    assert task(partner, community_id=2).slot.scope_kind == "community"
    with pytest.raises(ValidationFailed):
        task(partner, house_id=3)


def test_run_log_is_pruned_after_90_days(app, factory):
    import time
    from datetime import timedelta

    from dashboard.clock import utcnow
    from dashboard.schema import ModelRun

    with factory() as s:
        forecasting.log_run(s, "train", system_scope(), {"a": 1}, time.perf_counter(), "ok")
        s.add(ModelRun(kind="forecast", at=utcnow() - timedelta(days=91), parameters_json="{}", outcome="ok"))
        s.commit()
        assert prune_run_log(s) == 1
        s.commit()
        assert [r.kind for r in s.scalars(select(ModelRun))] == ["train"]
