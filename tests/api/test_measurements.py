"""POST /api/v1/measurements: the ingestion contract."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dashboard.schema import EnergyRollup, Measurement

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def reading(device="H1-MAIN", minutes=0, **extra):
    body = {
        "device_id": device,
        "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(),
        "power_w": 1200.0,
    }
    return body | extra


def post(client, headers, items):
    """The body as a client's own encoder writes it, NaN and Infinity literals included (the test client's
    `json=` encodes with the app's JSON provider, which would send them as null)."""
    body = json.dumps({"measurements": items})
    return client.post("/api/v1/measurements", data=body, content_type="application/json", headers=headers)


def count(factory, model=Measurement):
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model))


def house_hour(factory, house_id, hour):
    with factory() as s:
        return s.scalar(
            select(EnergyRollup.consumption_wh).where(
                EnergyRollup.resolution == "hour",
                EnergyRollup.entity_kind == "house",
                EnergyRollup.entity_id == house_id,
                EnergyRollup.bucket_start == hour,
            )
        )


def test_batch_is_accepted_and_visible_in_rollups_at_once(client, world, factory):
    items = [reading(minutes=15 * i, energy_wh=300.0, voltage_v=231.0, power_factor=0.97) for i in range(4)]
    r = post(client, world.headers["admin"], items)
    assert r.status_code == 200, r.json
    assert r.json == {"accepted": 4, "duplicates": 0}
    assert house_hour(factory, world.house1, datetime(2026, 3, 1, 10)) == pytest.approx(1200.0)


def test_same_reading_twice_is_stored_once(client, world, factory):
    items = [reading(energy_wh=250.0), reading(energy_wh=250.0)]
    assert post(client, world.headers["admin"], items).json == {"accepted": 1, "duplicates": 1}
    assert post(client, world.headers["admin"], items[:1]).json == {"accepted": 0, "duplicates": 1}
    assert count(factory) == 1
    assert house_hour(factory, world.house1, datetime(2026, 3, 1, 10)) == pytest.approx(250.0)


def test_late_out_of_order_reading_updates_its_own_bucket(client, world, factory):
    post(client, world.headers["admin"], [reading(minutes=120, energy_wh=100.0)])
    post(client, world.headers["admin"], [reading(minutes=30, energy_wh=40.0)])
    assert house_hour(factory, world.house1, datetime(2026, 3, 1, 10)) == pytest.approx(40.0)
    assert house_hour(factory, world.house1, datetime(2026, 3, 1, 12)) == pytest.approx(100.0)


def test_appliances_are_not_added_on_top_of_the_house_meter(client, world, factory):
    post(client, world.headers["admin"], [reading(energy_wh=500.0), reading("H1-EV", energy_wh=200.0)])
    assert house_hour(factory, world.house1, datetime(2026, 3, 1, 10)) == pytest.approx(500.0)


def test_missing_energy_is_derived_from_power_and_gap_capped(client, world, factory):
    items = [
        reading(minutes=0, power_w=1200.0),
        reading(minutes=15, power_w=2000.0),
        reading(minutes=75, power_w=400.0),
    ]
    assert post(client, world.headers["admin"], items).status_code == 200
    with factory() as s:
        energies = s.scalars(select(Measurement.energy_wh).order_by(Measurement.ts)).all()
    # first: gap to next reading (15 min); second: 15 min since previous; third: 60 min gap capped at 15 min
    assert energies == pytest.approx([300.0, 500.0, 100.0])


BAD_CASES = [
    ("power_w", {"power_w": "high"}),
    ("power_w", {"power_w": None}),
    ("timestamp", {"timestamp": "2026-03-01T10:00:00"}),
    ("timestamp", {"timestamp": "yesterday"}),
    ("power_w", {"power_w": math.nan}),
    ("energy_wh", {"energy_wh": math.inf}),
    ("energy_wh", {"energy_wh": -1.0}),
    ("power_factor", {"power_factor": 1.2}),
    ("voltage_v", {"voltage_v": 1200.0}),
    ("voltage_v", {"voltage_v": -5.0}),
    ("timestamp", {"timestamp": (datetime.now(UTC) + timedelta(days=1)).isoformat()}),
    ("device_id", {"device_id": "NO-SUCH-DEVICE"}),
    ("device_id", {"device_id": 42}),
    ("power", {"power": 5}),
]


@pytest.mark.parametrize(("field", "change"), BAD_CASES)
def test_bad_reading_rejects_the_whole_batch_and_changes_nothing(client, world, factory, field, change):
    items = [reading(minutes=0, energy_wh=10.0), reading(minutes=15) | change]
    r = post(client, world.headers["admin"], items)
    assert r.status_code == 422
    assert r.json["error"] == "Invalid or missing input"
    assert {"index": 1, "field": field} == {k: r.json["details"][0][k] for k in ("index", "field")}
    assert r.json["details"][0]["message"]
    assert count(factory) == 0
    assert count(factory, EnergyRollup) == 0


def test_malformed_json_is_rejected(client, world):
    r = client.post(
        "/api/v1/measurements",
        data="{not json",
        headers=world.headers["admin"] | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json["error"] == "Invalid or missing input"


def test_batch_over_the_limit_is_413(client, world, factory):
    items = [reading(minutes=i) for i in range(10_001)]
    r = post(client, world.headers["admin"], items)
    assert r.status_code == 413
    assert count(factory) == 0


def test_consumer_cannot_post_for_another_house(client, world, factory):
    r = post(client, world.headers["consumer"], [reading("H2-MAIN", energy_wh=1.0)])
    assert r.status_code == 422
    assert r.json["details"][0]["field"] == "device_id"
    assert count(factory) == 0
    assert post(client, world.headers["consumer"], [reading("H1-MAIN", energy_wh=1.0)]).status_code == 200


def test_body_over_the_size_limit_is_413_before_parsing(client, world, factory):
    huge = b'{"measurements": [' + b" " * (9 * 1024 * 1024) + b"]}"
    r = client.post(
        "/api/v1/measurements",
        data=huge,
        headers=world.headers["admin"] | {"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json["error"]
    assert count(factory) == 0
