"""Training on awkward data: a scope without PV, a constant series. The answer says what is wrong."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

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
