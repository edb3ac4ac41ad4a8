"""Forecasts without pressing Train (issue 15, section 1): the first forecast request for a slot without a
model queues its training once and answers the spec's 500 saying so, then the forecast; consumers only for
their own houses; scheduled retraining's plan and its failing scopes; production bounded by the installed
PV and zero at night, judged by capacity-normalised MAE. Real PostgreSQL and the in-process job queue."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from dashboard.context import bound
from dashboard.jobqueue import FINAL
from dashboard.model_store import slot_of
from dashboard.schema import ModelRun, ModelVersion
from jobs.training import TRAIN_FUNC
from models.calendar import solar_elevation_deg

DAYS = 21  # enough to train on (7 days of lags, 7 of origins, a hold-out) and quick to fit
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PARAMS = {"model": "ridge"}  # the quickest learned model; the page's default (auto) is the benchmark's


def load(client, world, device: str, wh, days: int = DAYS) -> None:
    """`days` of hourly readings of `device` up to now, `wh(timestamp)` Wh each."""
    start = NOW - timedelta(days=days)
    items = []
    for i in range(days * 24):
        ts = start + timedelta(hours=i)
        items.append(
            {"device_id": device, "timestamp": ts.isoformat(), "power_w": wh(ts), "energy_wh": wh(ts)}
        )
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.json


def household(ts: datetime) -> float:
    hour = ts.hour + ts.minute / 60
    return 300 + 200 * math.sin(2 * math.pi * (hour - 8) / 24) + 40 * math.sin(ts.timetuple().tm_yday)


def pv_near_capacity(ts: datetime) -> float:
    """A 5 kWp roof in Athens, tilted to the low winter sun: up to 4.9 kWh an hour at noon, with clouds
    that make the band wide."""
    sun = solar_elevation_deg(pd.DatetimeIndex([pd.Timestamp(ts)]), 37.98, 23.73, pd.Timedelta("1h"))[0]
    if sun <= 0:
        return 0.0
    clouds = 0.55 + 0.45 * abs(math.sin(ts.timetuple().tm_yday * 2.3 + ts.hour))
    return min(4900.0, 10500 * math.sin(math.radians(sun)) * clouds)


@pytest.fixture(autouse=True)
def own_jobs(app):
    """This test's jobs only: the session's app keeps its in-process queue, so the earlier tests' ended
    jobs are forgotten first."""
    queue = app.server.extensions["aggregator"].job_queue
    for status in list(queue.jobs.values()):
        status.done.wait(300)
    with queue.lock:
        queue.jobs.clear()
        queue.unique.clear()


def forecast(client, world, role: str, target: str = "consumption", **params):
    return client.post(f"/aggregator/{target}/forecast/next-24-hours", query_string=PARAMS | params,
                       headers=world.headers[role])  # fmt: skip


def training_jobs(app) -> list:
    queue = app.server.extensions["aggregator"].job_queue
    return [s for s in queue.jobs.values() if s.func == TRAIN_FUNC]


def wait_all(app, timeout_s: float = 120) -> None:
    queue = app.server.extensions["aggregator"].job_queue
    for status in training_jobs(app):
        queue.wait(status.id, timeout_s)
        assert status.status in FINAL, status


def test_first_forecast_queues_training_once_and_answers_the_spec_500_until_the_model_is_ready(
    app, client, world
):
    load(client, world, "H1-MAIN", household)
    first = forecast(client, world, "consumer")  # the consumer's only house: house 1, from the server
    assert first.status_code == 500
    body = first.get_json()
    assert body["error"] == "Model missing or forecast failed"
    assert "training is under way" in body["detail"]
    job_id = body["training"]["job_id"]
    assert body["training"]["status"] in ("queued", "started") and job_id in body["detail"]

    again = forecast(client, world, "consumer")  # asked again while it trains: the same job, no other
    if again.status_code == 500:
        assert again.get_json()["training"]["job_id"] == job_id
    assert [s.id for s in training_jobs(app)] == [job_id]

    wait_all(app)
    assert training_jobs(app)[0].result.get("model_version"), training_jobs(app)[0].result
    ready = forecast(client, world, "consumer")
    assert ready.status_code == 200, ready.get_json()
    rows = ready.get_json()["forecast"]
    assert len(rows) == 24 and all(r["lower"] <= r["forecasted_energy_usage"] <= r["upper"] for r in rows)
    assert len(training_jobs(app)) == 1  # the model exists now: nothing more was queued


def test_a_consumer_cannot_train_a_house_that_is_not_theirs(app, client, world):
    load(client, world, "H2-MAIN", household)
    r = forecast(client, world, "consumer", house_id=world.house2)
    assert r.status_code == 422 and r.get_json()["details"][0]["field"] == "house_id"
    r = forecast(client, world, "api_key")  # a third-party app reads the fleet: trained on schedule only
    assert r.status_code == 500 and "scheduled retraining" in r.get_json()["detail"]
    assert "training" not in r.get_json()
    assert training_jobs(app) == []  # nothing queued by either
    r = forecast(client, world, "consumer2")  # house 2's owner may
    assert r.status_code == 500 and r.get_json()["training"]["job_id"]
    assert len(training_jobs(app)) == 1
    wait_all(app)


def test_a_failed_training_answers_its_reason_and_is_not_queued_again_at_once(app, client, world):
    load(client, world, "H2-MAIN", household, days=5)  # too little history
    r = forecast(client, world, "consumer2")
    assert r.status_code == 500 and r.get_json()["training"]["job_id"]
    wait_all(app)
    r = forecast(client, world, "consumer2")
    assert r.status_code == 500
    assert "its training failed" in r.get_json()["detail"] and "Not enough data" in r.get_json()["detail"]
    assert len(training_jobs(app)) == 1


def test_production_band_stays_within_installed_pv_and_is_zero_at_night(app, client, world, factory):
    load(client, world, "H1-MAIN", household)
    load(client, world, "H1-PV", pv_near_capacity)
    r = client.post(
        "/aggregator/production/train/next-24-hours",
        query_string={"house_id": world.house1},
        headers=world.headers["admin"],
    )  # fmt: skip  (model auto: every candidate's hold-out)
    assert r.status_code == 200, r.get_json()
    trained = r.get_json()
    assert "mape" not in trained and trained["nmae_basis"] == "capacity"
    assert trained["nmae"] == pytest.approx(trained["mae"] / 5.0, rel=1e-4)  # the roof's 5 kWp x 1 h
    listed = client.get("/api/v1/models", headers=world.headers["analyst"]).get_json()["models"][0]
    assert listed["metrics"]["nmae_basis"] == "capacity" and "mape" not in listed["metrics"]

    r = forecast(client, world, "admin", target="production", house_id=world.house1, model="auto")
    assert r.status_code == 200, r.get_json()
    rows = r.get_json()["forecast"]
    upper = np.array([row["upper"] for row in rows])
    assert upper.max() <= 5.0 + 1e-9
    # (whether the bound binds depends on the hours the forecast covers, which follow the clock)
    times = pd.DatetimeIndex([pd.Timestamp(row["timestamp"], tz="UTC") for row in rows])
    sun = solar_elevation_deg(times, 37.98, 23.73, pd.Timedelta("1h"))
    night = sun < -1.0
    assert night.any() and (~night).any()
    assert all(
        rows[i]["upper"] == 0 and rows[i]["forecasted_energy_usage"] == 0 for i in np.flatnonzero(night)
    )
    with factory() as s:  # the stored model carries the bound it was trained with
        row = s.scalar(select(ModelVersion).where(ModelVersion.target == "production"))
    model = app.server.extensions["aggregator"].model_store
    with factory() as s:
        _row, fitted = model.load_active(s, slot_of(row))
    assert fitted.cfg.capacity_kw == pytest.approx(5.0)


def test_scheduled_retraining_plans_missing_slots_first_then_the_stalest_and_survives_a_failure(
    app, client, world, factory
):
    from jobs import retrain

    load(client, world, "H1-MAIN", household)
    load(client, world, "H2-MAIN", lambda ts: 250.0)  # constant: its training fails, the others go on
    svc = app.server.extensions["aggregator"]
    with factory() as s:
        first = retrain.plan(s)
    kinds = [(p.slot.scope_kind, p.slot.scope_id, p.slot.target) for p in first]
    # the fleet, the community (house 1 is in it), then the houses; production where a production device
    # is (house 2 has none); the page's default kind
    assert kinds == [
        ("all", None, "consumption"), ("all", None, "production"),
        ("community", world.community, "consumption"), ("community", world.community, "production"),
        ("house", world.house1, "consumption"), ("house", world.house1, "production"),
        ("house", world.house2, "consumption"),
    ]  # fmt: skip
    assert all(p.trained_at is None for p in first)
    assert {(p.slot.product, p.slot.model, p.slot.strategy) for p in first} == {
        ("next-24-hours", "auto", "direct")
    }

    with bound(svc):
        counts = retrain.retrain_due()
        again = retrain.retrain_due()  # while they are queued or running: none is queued twice
    assert counts["queued"] == len(first) and counts["errors"] == 0
    assert again["queued"] + again["already_queued"] == len(first) and again["already_queued"] > 0
    wait_all(app, timeout_s=600)
    with factory() as s:
        slots = {(m.scope_kind, m.scope_id, m.target) for m in s.scalars(select(ModelVersion))}
        failed = s.scalars(select(ModelRun).where(ModelRun.outcome == "failed")).all()
    # the failing scopes (a constant series, production without readings) did not stop the others
    assert slots == {("all", None, "consumption"), ("community", world.community, "consumption"),
                     ("house", world.house1, "consumption")}  # fmt: skip
    assert any("constant series" in (run.error or "") for run in failed)

    with factory() as s:  # house 1's model grows old: it comes first among the trained ones
        row = s.scalar(select(ModelVersion).where(ModelVersion.scope_kind == "house"))
        row.trained_at = row.trained_at - timedelta(days=3)
        s.commit()
        second = retrain.plan(s)
    missing = [p.trained_at is None for p in second]
    assert missing == sorted(missing, reverse=True) and sum(missing) == 4  # without a model first
    trained = [p for p in second if p.trained_at is not None]
    assert trained[0].slot.scope_kind == "house"
    assert [p.trained_at for p in trained] == sorted(p.trained_at for p in trained)  # the stalest first


def test_retraining_cron_fires_in_the_app_time_zone_once_per_firing(app):
    from jobs import retrain

    settings = app.server.extensions["aggregator"].settings
    athens_0231 = datetime(2026, 7, 1, 23, 31, tzinfo=UTC)  # 02:31 in Athens (UTC+3)
    assert retrain.due_firing(settings, athens_0231) == datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    assert retrain.due_firing(settings, athens_0231 + timedelta(hours=2)) is None  # past the catch-up
    assert retrain.due_firing(settings, datetime(2026, 7, 1, 2, 31, tzinfo=UTC)) is None  # 02:31 UTC: 05:31


def test_the_scheduled_kind_is_the_forecasts_page_default():
    from jobs import retrain
    from pages import forecasts

    assert (retrain.PRODUCT, retrain.MODEL, retrain.STRATEGY) == (
        forecasts.DEFAULT_PRODUCT, forecasts.DEFAULT_MODEL, forecasts.DEFAULT_STRATEGY)  # fmt: skip
