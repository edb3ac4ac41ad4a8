"""GET /api/v1/energy and GET /api/v1/measurements: scoped reads from rollups and raw rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def readings(device, start, count, energy_wh, step_min=15):
    return [
        {
            "device_id": device,
            "timestamp": (start + timedelta(minutes=step_min * i)).isoformat(),
            "power_w": energy_wh * 60 / step_min,
            "energy_wh": energy_wh,
        }
        for i in range(count)
    ]


def load(client, world, items):
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.json


def energy(client, headers, **params):
    params = {"resolution": "hour", "start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"} | params
    return client.get("/api/v1/energy", query_string=params, headers=headers)


@pytest.fixture
def loaded(client, world):
    load(client, world, readings("H1-MAIN", T0, 8, 250.0))  # 1 kWh per hour, 00:00-02:00
    load(client, world, readings("H1-PV", T0, 4, 100.0))  # 0.4 kWh in the first hour
    load(client, world, readings("H2-MAIN", T0, 4, 500.0))  # 2 kWh in the first hour
    load(client, world, readings("PARK-INV", T0, 4, 1000.0))  # 4 kWh in the first hour
    return world


def test_admin_sees_everything_summed_with_net(client, loaded):
    r = energy(client, loaded.headers["admin"])
    assert r.status_code == 200
    assert r.json["resolution"] == "hour"
    first, second = r.json["series"]
    assert first == {
        "timestamp": "2026-03-01T00:00:00Z",
        "consumption_kwh": pytest.approx(3.0),
        "production_kwh": pytest.approx(4.4),
        "net_kwh": pytest.approx(-1.4),
    }
    assert second["consumption_kwh"] == pytest.approx(1.0)


def test_consumer_sees_only_own_house(client, loaded):
    r = energy(client, loaded.headers["consumer"])
    first = r.json["series"][0]
    assert first["consumption_kwh"] == pytest.approx(1.0)
    assert first["production_kwh"] == pytest.approx(0.4)


def test_consumer_asking_for_another_house_gets_404(client, loaded):
    r = energy(client, loaded.headers["consumer"], house_id=loaded.house2)
    assert r.status_code == 404
    assert "error" in r.json


def test_consumer_cannot_read_community_aggregates(client, loaded):
    assert energy(client, loaded.headers["consumer"], community_id=loaded.community).status_code == 404


def test_community_sums_member_houses_and_its_pv_park(client, loaded):
    first = energy(client, loaded.headers["analyst"], community_id=loaded.community).json["series"][0]
    assert first["consumption_kwh"] == pytest.approx(1.0)  # house A only; house B is not a member
    assert first["production_kwh"] == pytest.approx(4.4)  # house A's PV + the park


def test_third_party_gets_aggregates_but_not_single_houses(client, loaded):
    assert energy(client, loaded.headers["api_key"]).status_code == 200
    assert energy(client, loaded.headers["api_key"], community_id=loaded.community).status_code == 200
    assert energy(client, loaded.headers["api_key"], house_id=loaded.house1).status_code == 403


def test_fifteen_minute_resolution_and_gaps_are_absent(client, loaded):
    series = energy(client, loaded.headers["admin"], resolution="15min", house_id=loaded.house1).json[
        "series"
    ]
    assert len(series) == 8
    assert series[0]["consumption_kwh"] == pytest.approx(0.25)
    hourly = energy(client, loaded.headers["admin"], house_id=loaded.house2).json["series"]
    assert [p["timestamp"] for p in hourly] == ["2026-03-01T00:00:00Z"]  # no readings later: no rows


def test_daily_buckets_follow_local_days_across_dst(client, world):
    # Europe/Athens springs forward on 2026-03-29: that local day has 23 hours.
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 2026-03-29 00:00 local (+02:00)
    load(client, world, readings("H1-MAIN", start, 25, 100.0, step_min=60))
    r = energy(client, world.headers["admin"], resolution="day", start="2026-03-28T00:00:00Z",
               end="2026-04-01T00:00:00Z")  # fmt: skip
    days = {p["timestamp"]: p["consumption_kwh"] for p in r.json["series"]}
    # 23 hourly readings fall on the short local day; the 24th and 25th on the next day (from 21:00 UTC).
    assert days == {"2026-03-28T22:00:00Z": pytest.approx(2.3), "2026-03-29T21:00:00Z": pytest.approx(0.2)}


def test_daily_bounds_inside_local_days_count_every_day_they_touch_whole(client, world):
    # Athens springs forward on 2026-03-29 (a 23-hour local day); both bounds fall inside local days.
    load(client, world, readings("H1-MAIN", datetime(2026, 3, 28, 22, 0, tzinfo=UTC), 25, 100.0, step_min=60))
    r = energy(client, world.headers["admin"], resolution="day", start="2026-03-29T10:00:00+03:00",
               end="2026-03-30T05:00:00+03:00")  # fmt: skip
    assert r.status_code == 200
    days = {p["timestamp"]: p["consumption_kwh"] for p in r.json["series"]}
    assert days == {"2026-03-28T22:00:00Z": pytest.approx(2.3), "2026-03-29T21:00:00Z": pytest.approx(0.2)}
    assert (r.json["start"], r.json["end"]) == ("2026-03-28T22:00:00Z", "2026-03-30T21:00:00Z")


def test_a_range_inside_the_25_hour_autumn_day_covers_that_whole_local_day(client, world):
    # Athens falls back on 2026-10-25: local midnight +03:00 to the next local midnight +02:00.
    r = energy(client, world.headers["admin"], resolution="day", start="2026-10-25T12:00:00+02:00",
               end="2026-10-25T13:00:00+02:00")  # fmt: skip
    assert r.status_code == 200 and r.json["series"] == []
    assert (r.json["start"], r.json["end"]) == ("2026-10-24T21:00:00Z", "2026-10-25T22:00:00Z")


@pytest.mark.parametrize(
    ("resolution", "start", "end", "covered", "kwh"),
    [
        ("hour", "00:30", "01:15", ("00:00", "02:00"), [1.0, 1.0]),
        ("15min", "00:07", "00:38", ("00:00", "00:45"), [0.25, 0.25, 0.25]),
        ("hour", "00:00", "01:00", ("00:00", "01:00"), [1.0]),  # aligned bounds stay as they are
    ],
)
def test_bounds_inside_buckets_count_the_whole_buckets_and_say_so(client, loaded, resolution, start, end,
                                                                  covered, kwh):  # fmt: skip
    day = "2026-03-01T"
    r = energy(client, loaded.headers["admin"], resolution=resolution, start=f"{day}{start}:00Z",
               end=f"{day}{end}:00Z", house_id=loaded.house1)  # fmt: skip
    assert r.status_code == 200
    assert [p["consumption_kwh"] for p in r.json["series"]] == pytest.approx(kwh)
    assert (r.json["start"], r.json["end"]) == tuple(f"{day}{t}:00Z" for t in covered)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"resolution": "minute"}, "resolution"),
        ({"start": "not-a-time"}, "start"),
        ({"start": "2026-03-01T00:00:00"}, "start"),
        ({"end": "2026-02-01T00:00:00Z"}, "end"),
        ({"resolution": "15min", "start": "2020-01-01T00:00:00Z"}, "resolution"),
        ({"house_id": "abc"}, "house_id"),
    ],
)
def test_bad_parameters_get_422_naming_the_field(client, loaded, params, field):
    r = energy(client, loaded.headers["admin"], **params)
    assert r.status_code == 422
    assert r.json["error"] == "Invalid or missing input"
    assert r.json["details"][0]["field"] == field


def test_raw_measurements_are_scoped(client, loaded):
    params = {"device_id": "H1-MAIN", "start": "2026-03-01T00:00:00Z", "end": "2026-03-01T01:00:00Z"}
    r = client.get("/api/v1/measurements", query_string=params, headers=loaded.headers["consumer"])
    assert r.status_code == 200
    assert [m["timestamp"] for m in r.json["measurements"]] == [
        "2026-03-01T00:00:00Z", "2026-03-01T00:15:00Z", "2026-03-01T00:30:00Z", "2026-03-01T00:45:00Z",
    ]  # fmt: skip
    assert r.json["measurements"][0]["energy_wh"] == pytest.approx(250.0)
    other = params | {"device_id": "H2-MAIN"}
    assert (
        client.get("/api/v1/measurements", query_string=other, headers=loaded.headers["consumer"]).status_code
        == 404
    )
    assert (
        client.get("/api/v1/measurements", query_string=params, headers=loaded.headers["api_key"]).status_code
        == 403
    )
