"""The spec's /aggregator endpoints: exact bodies, errors, roles and scope; jobs and model versions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

END = datetime(2026, 6, 20, 0, 0, tzinfo=UTC)
AS_OF = "2026-06-19T00:00:00Z"


@dataclass
class Demo:
    headers: dict
    house1: int
    house2: int


@pytest.fixture
def demo(app, factory, pg_snapshots):
    """24 days of demo readings (4 houses) before END, and request headers for its users (seeded once per
    session, restored before each test)."""
    from flask_jwt_extended import create_access_token
    from sqlalchemy import select

    from dashboard.auth import create_api_key
    from dashboard.schema import House, User

    pg_snapshots.demo(factory, "Europe/Athens", houses=4, days=24, end=END)
    with factory() as s:
        users = {u.username: u for u in s.scalars(select(User))}
        houses = sorted(s.scalars(select(House.id)))
        _row, key = create_api_key(s, "tests")
        s.commit()
        consumer_house = users["consumer"].houses[0].id
    with app.server.app_context():
        headers = {
            n: {"Authorization": f"Bearer {create_access_token(identity=str(u.id))}"}
            for n, u in users.items()
        }
    headers["api_key"] = {"X-API-Key": key}
    return Demo(headers, consumer_house, next(h for h in houses if h != consumer_house))


def post(client, path, headers, **params):
    return client.post(path, query_string=params, headers=headers)


def test_train_answers_the_spec_body(client, demo):
    r = post(client, "/aggregator/consumption/train/next-24-hours", demo.headers["analyst"], as_of=AS_OF)
    assert r.status_code == 200, r.json
    assert r.json["message"] == "Model trained and saved to MinIO successfully"
    assert {"mse", "mae", "r2", "model_version", "mape", "coverage"} <= set(r.json)
    assert "horizon" not in r.json
    short = client.post("/aggregator/consumption/train/short-term", json={"horizon": 8, "as_of": AS_OF},
                        headers=demo.headers["admin"])  # fmt: skip
    assert short.status_code == 200 and short.json["horizon"] == 8


def test_auto_training_names_the_served_model_and_every_candidates_hold_out_error(client, demo):
    r = post(client, "/aggregator/consumption/train/next-24-hours", demo.headers["analyst"], as_of=AS_OF)
    assert r.status_code == 200, r.json
    candidates = r.json["candidates"]
    assert {"xgboost_direct", "ridge_direct", "sarima", "weekly_naive", "persistence", "mean_7d"} <= set(
        candidates
    )
    served = r.json["model"]
    assert served in candidates and r.json["mae"] == pytest.approx(candidates[served]["mae"], rel=1e-4)
    assert all(candidates[served]["mae"] <= c["mae"] for c in candidates.values() if "mae" in c)
    listed = client.get("/api/v1/models", headers=demo.headers["analyst"]).json["models"][0]
    assert (
        listed["served"] == served
        and listed["model"] == "auto"
        and listed["metrics"]["candidates"] == candidates
    )
    forced = post(client, "/aggregator/consumption/train/next-24-hours", demo.headers["analyst"], as_of=AS_OF,
                  model="ridge")  # fmt: skip
    assert forced.status_code == 200, forced.json
    assert forced.json["model"] == "ridge" and forced.json["candidates"] == {}


def test_forecast_answers_the_spec_body_with_a_band(client, demo):
    assert (
        post(
            client, "/aggregator/consumption/train/next-24-hours", demo.headers["admin"], as_of=AS_OF
        ).status_code
        == 200
    )
    r = post(client, "/aggregator/consumption/forecast/next-24-hours", demo.headers["analyst"], as_of=AS_OF)
    assert r.status_code == 200, r.json
    rows = r.json["forecast"]
    assert len(rows) == 24 and set(rows[0]) == {"timestamp", "forecasted_energy_usage", "lower", "upper"}
    assert rows[0]["timestamp"] == "2026-06-19 00:00:00" and rows[-1]["timestamp"] == "2026-06-19 23:00:00"
    assert all(x["lower"] <= x["forecasted_energy_usage"] <= x["upper"] for x in rows)
    assert all(x["lower"] >= 0 for x in rows)


def test_forecast_without_a_model_is_the_spec_500(client, demo):
    r = post(client, "/aggregator/production/forecast/next-24-hours", demo.headers["admin"], as_of=AS_OF)
    assert r.status_code == 500 and r.json["error"] == "Model missing or forecast failed"


@pytest.mark.parametrize("horizon", ["0", "21", "x", ""])
def test_bad_horizon_is_the_spec_422(client, world, horizon):
    r = post(client, "/aggregator/consumption/train/short-term", world.headers["admin"], horizon=horizon)
    assert r.status_code == 422 and r.json["error"] == "Invalid or missing input"
    assert r.json["details"][0]["field"] == "horizon"


def test_training_failure_is_the_spec_500_with_a_reason(client, demo):
    r = post(
        client,
        "/aggregator/consumption/train/next-24-hours",
        demo.headers["admin"],
        as_of="2026-05-30T00:00:00Z",
    )
    assert r.status_code == 500 and r.json["error"] == "Training failed"
    assert "Not enough data" in r.json["detail"]


def test_roles_and_scope(client, demo):
    assert (
        post(client, "/aggregator/consumption/train/next-24-hours", demo.headers["consumer"]).status_code
        == 403
    )
    assert (
        post(client, "/aggregator/consumption/train/next-24-hours", demo.headers["api_key"]).status_code
        == 403
    )
    other = post(
        client,
        "/aggregator/consumption/forecast/next-24-hours",
        demo.headers["consumer"],
        house_id=demo.house2,
    )
    assert other.status_code == 422 and other.json["details"][0]["field"] == "house_id"
    house = post(
        client,
        "/aggregator/consumption/forecast/next-24-hours",
        demo.headers["api_key"],
        house_id=demo.house1,
    )
    assert house.status_code == 422


def test_async_training_reports_through_the_jobs_api(client, demo):
    r = post(
        client,
        "/aggregator/consumption/train/next-24-hours",
        demo.headers["admin"],
        as_of=AS_OF,
        **{"async": "true"},
    )
    assert r.status_code == 202
    url = r.json["status_url"]
    for _ in range(600):
        status = client.get(url, headers=demo.headers["analyst"]).json
        if status["status"] in ("finished", "failed"):
            break
        time.sleep(0.1)
    assert status["status"] == "finished" and status["progress"] == 1.0
    assert status["result"]["message"] == "Model trained and saved to MinIO successfully"
    assert client.get(url, headers=demo.headers["consumer"]).status_code == 403


def test_model_versions_list_and_activate_to_roll_back(client, demo):
    for _ in range(2):
        post(client, "/aggregator/consumption/train/next-24-hours", demo.headers["admin"], as_of=AS_OF)
    models = client.get("/api/v1/models", headers=demo.headers["analyst"]).json["models"]
    newest, older = models[0], models[1]
    assert newest["is_active"] and not older["is_active"] and newest["metrics"]["mae"] > 0
    assert (
        client.post(f"/api/v1/models/{older['id']}/activate", headers=demo.headers["analyst"]).status_code
        == 403
    )
    r = client.post(f"/api/v1/models/{older['id']}/activate", headers=demo.headers["admin"])
    assert r.status_code == 200 and r.json["is_active"]
    states = {
        m["id"]: m["is_active"]
        for m in client.get("/api/v1/models", headers=demo.headers["admin"]).json["models"]
    }
    assert states == {older["id"]: True, newest["id"]: False}


def test_unreachable_job_queue_is_the_spec_500_and_the_server_stays_up(tmp_path):
    from flask_jwt_extended import create_access_token

    from app import create_app
    from dashboard.auth import create_user
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, REDIS_URL="redis://127.0.0.1:1/0"))  # nothing listens there
    services = app.server.extensions["aggregator"]
    with services.session_factory() as s:
        user = create_user(s, "ops", "long-password", "admin")
        s.commit()
        user_id = user.id
    with app.server.app_context():
        headers = {"Authorization": f"Bearer {create_access_token(identity=str(user_id))}"}
    client = app.server.test_client()
    r = client.post("/aggregator/consumption/train/next-24-hours", headers=headers)
    assert r.status_code == 500 and r.json["error"] == "Training failed"
    assert "job queue is unavailable" in r.json["detail"]
    assert client.get("/healthz").status_code == 200
    services.engine.dispose()


def test_training_with_no_data_fails_at_once_without_retries(client, world):
    started = time.perf_counter()
    r = client.post("/aggregator/consumption/train/next-24-hours", headers=world.headers["admin"])
    assert r.status_code == 500 and r.json["error"] == "Training failed"
    assert "No readings" in r.json["detail"]
    assert time.perf_counter() - started < 5  # a data problem is not retried with back-off


def forecast_runs(factory) -> int:
    """Forecasts computed for requests (each forecast job logs one run; a cached answer logs none)."""
    from sqlalchemy import func, select

    from dashboard.schema import ModelRun

    with factory() as s:
        return s.scalar(select(func.count()).select_from(ModelRun).where(ModelRun.kind == "forecast"))


def test_an_issued_forecast_is_answered_from_the_cache_and_equals_a_fresh_one(app, client, demo, factory):
    from dashboard import forecasting
    from dashboard.scope import system_scope

    cache = app.server.extensions["aggregator"].cache  # in-process: no REDIS_URL here
    train, path = (
        "/aggregator/consumption/train/next-24-hours",
        "/aggregator/consumption/forecast/next-24-hours",
    )
    assert post(client, train, demo.headers["admin"], as_of=AS_OF).status_code == 200
    # the training job issued the new model's forecast from its origin: the request runs no forecast
    first = post(client, path, demo.headers["analyst"], as_of=AS_OF)
    assert first.status_code == 200 and len(first.json["forecast"]) == 24
    assert forecast_runs(factory) == 0
    # the consumer's default is their own house: another slot, without a model, never the all-houses answer
    # (a backtest's as_of queues no training and no forecast job: jobs/autotrain.py)
    missing = post(client, path, demo.headers["consumer"], as_of=AS_OF)
    assert missing.status_code == 500 and "train one with as_of" in missing.json["detail"]

    cache.clear()  # computed again by a forecast job: the same answer
    fresh = post(client, path, demo.headers["analyst"], as_of=AS_OF)
    assert fresh.status_code == 200 and forecast_runs(factory) == 1  # this one
    assert fresh.json == first.json
    assert post(client, path, demo.headers["admin"], as_of=AS_OF).json == first.json
    assert forecast_runs(factory) == 1  # answered from the cache

    earlier = post(client, path, demo.headers["analyst"], as_of="2026-06-18T00:00:00Z")
    assert earlier.json["forecast"][0]["timestamp"] == "2026-06-18 00:00:00" and forecast_runs(factory) == 2

    # a new version has its own forecast, cached under its own key
    retrained = post(client, train, demo.headers["admin"], as_of=AS_OF)
    task = forecasting.resolve_task(system_scope(), "consumption", "next-24-hours", {"as_of": AS_OF})
    with factory() as s:
        answer = forecasting.cached_forecast(s, cache, system_scope(), task)
    assert answer["version"] == retrained.json["model_version"]
    assert post(client, path, demo.headers["analyst"], as_of=AS_OF).json["forecast"] == answer["forecast"]
    assert forecast_runs(factory) == 2
