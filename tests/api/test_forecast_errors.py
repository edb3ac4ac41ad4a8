"""Training and forecasting on awkward data: a scope without PV, a constant series, data that ended
months ago, no data at all. Each answer says what is wrong and, where there is one, the way out."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dashboard.forecasting import HISTORY_DAYS
from dashboard.schema import ModelVersion

DAYS = 21  # enough history to train on (models.base: 7 days of lags + 7 of origins + a hold-out)
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def load(client, world, device: str, end: datetime, step_min: int, wh) -> None:
    """DAYS of readings of `device` before `end`, `wh(i)` Wh in the i-th interval."""
    count = DAYS * 24 * 60 // step_min
    start = end - timedelta(minutes=step_min * count)
    items = [
        {
            "device_id": device,
            "timestamp": (start + timedelta(minutes=step_min * i)).isoformat(),
            "power_w": wh(i) * 60 / step_min,
            "energy_wh": wh(i),
        }
        for i in range(count)
    ]
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.json


def daily_shape(step_min: int):
    """Consumption with a daily cycle and a weekly wobble: something a model can learn."""
    per_day = 24 * 60 // step_min
    return lambda i: 200 + 120 * math.sin(2 * math.pi * i / per_day) + 15 * math.sin(i / (3.5 * per_day))


def strict_json(response) -> dict:
    return json.loads(response.get_data(as_text=True), parse_constant=lambda c: pytest.fail(f"{c} in body"))


def models_stored(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(ModelVersion))


def quarter_now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def stamp(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%MZ")


def test_training_production_for_a_house_without_pv_is_the_spec_500_naming_the_cause(client, world, factory):
    load(client, world, "H2-MAIN", NOW, 60, daily_shape(60))  # house B: a meter, no PV
    r = client.post("/aggregator/production/train/next-24-hours", query_string={"house_id": world.house2},
                    headers=world.headers["admin"])  # fmt: skip
    assert r.status_code == 500
    assert strict_json(r) == {
        "error": "Training failed",
        "detail": f"house {world.house2} has no production devices (PV or inverter): nothing to forecast",
    }
    assert models_stored(factory) == 0  # nothing fitted, nothing stored


def test_a_constant_series_is_refused_not_fitted(client, world, factory):
    load(client, world, "H2-MAIN", NOW, 60, lambda i: 250.0)  # the same 0.25 kWh every hour
    r = client.post("/aggregator/consumption/train/next-24-hours", query_string={"house_id": world.house2},
                    headers=world.headers["admin"])  # fmt: skip
    assert r.status_code == 500 and strict_json(r)["error"] == "Training failed"
    detail = r.json["detail"]
    assert detail.startswith(f"the consumption of house {world.house2} is 0.25 kWh in each of the")
    assert detail.endswith("a constant series has nothing to forecast")
    assert models_stored(factory) == 0


def test_training_on_data_that_ended_months_ago_uses_its_latest_reading_and_a_forecast_says_how(
    client, world
):
    ended = NOW - timedelta(days=120)  # before the short-term product's 90-day training window
    load(client, world, "H1-MAIN", ended, 15, daily_shape(15))
    latest, origin = ended - timedelta(minutes=15), ended  # the last reading's interval, the next one
    train = client.post("/aggregator/consumption/train/short-term", json={"horizon": 8},
                        headers=world.headers["admin"])  # fmt: skip
    assert train.status_code == 200, train.json
    body = strict_json(train)
    assert body["message"] == "Model trained and saved to MinIO successfully" and body["horizon"] == 8
    assert body["as_of"] == origin.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["note"] == (
        f"No readings in the last 90 days; trained on the 90 days up to the latest reading at {stamp(latest)}"
    )
    assert body["model_version"]

    path = "/aggregator/consumption/forecast/short-term"
    before = quarter_now()
    r = client.post(path, json={"horizon": 8}, headers=world.headers["analyst"])
    assert r.status_code == 422
    [problem] = r.json["details"]
    assert problem["field"] == "as_of"
    assert problem["message"] in {
        f"No readings in the {HISTORY_DAYS} days before {stamp(now_origin)}; the latest reading is at {stamp(latest)}: "
        f"pass as_of={body['as_of']} to forecast from there"
        for now_origin in (before, quarter_now())  # the request may start the next quarter hour
    }
    advised = client.post(path, json={"horizon": 8, "as_of": body["as_of"]}, headers=world.headers["analyst"])
    assert advised.status_code == 200, advised.json
    assert advised.json["forecast"][0]["timestamp"] == origin.strftime("%Y-%m-%d %H:%M:%S")


def test_an_explicit_as_of_is_kept_and_the_error_names_the_latest_reading(client, world, factory):
    ended = NOW - timedelta(days=120)
    load(client, world, "H1-MAIN", ended, 15, daily_shape(15))
    as_of = NOW - timedelta(days=1)
    r = client.post("/aggregator/consumption/train/short-term",
                    json={"horizon": 4, "as_of": as_of.isoformat()}, headers=world.headers["admin"])  # fmt: skip
    assert r.status_code == 500 and r.json["error"] == "Training failed"
    latest = ended - timedelta(minutes=15)
    assert r.json["detail"] == (
        f"No readings in the 90 days before {stamp(as_of)}; the latest reading is at {stamp(latest)}: "
        f"pass as_of={ended.strftime('%Y-%m-%dT%H:%M:%SZ')} to train on the data up to it"
    )
    assert models_stored(factory) == 0


def test_no_readings_at_all_says_so(client, world):
    r = client.post("/aggregator/consumption/train/next-24-hours", headers=world.headers["admin"])
    assert r.status_code == 500 and r.json["error"] == "Training failed"
    assert r.json["detail"] == "No readings at all for the fleet (all houses and PV parks)"
    r = client.post("/aggregator/consumption/train/next-24-hours", query_string={"house_id": world.house1},
                    headers=world.headers["admin"])  # fmt: skip
    assert r.json["detail"] == f"No readings at all for house {world.house1}"
