"""Weather per location: POST /api/v1/weather and `import-csv --kind weather` (validated, all or nothing,
idempotent), and `forecasting.load_weather`: one location's rows, the nearest within 50 km, forecast rows
where no observation is stored yet."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from dashboard import forecasting
from dashboard.places import Place, distance_km
from dashboard.schema import WeatherLocation, WeatherObservation
from dashboard.weather import WeatherRow
from dashboard.weather.store import location_at, upsert_rows
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
ATHENS = {"latitude": 37.98, "longitude": 23.73}


def hours(n, start=T0, **values):
    return [{"timestamp": (start + timedelta(hours=i)).isoformat(), "temperature_c": 10.0 + i} | values
            for i in range(n)]  # fmt: skip


def post(client, world, body, role="admin"):
    return client.post("/api/v1/weather", json=body, headers=world.headers[role])


def stored(factory) -> list[tuple]:
    with factory() as s:
        return s.execute(
            select(
                WeatherObservation.location,
                WeatherObservation.time,
                WeatherObservation.temperature_c,
                WeatherObservation.irradiance_wm2,
                WeatherObservation.cloud_cover_pct,
                WeatherObservation.is_forecast,
            ).order_by(WeatherObservation.time)  # fmt: skip
        ).all()


def count(factory, model) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model))


# ---- POST /api/v1/weather --------------------------------------------------------------------------------


def test_observations_are_stored_at_their_location_and_posting_again_changes_nothing(client, world, factory):
    body = ATHENS | {"observations": hours(3, irradiance_wm2=420.5, cloud_cover=40)}
    r = post(client, world, body)
    assert r.status_code == 200, r.json
    assert r.json == {"location": {"name": "37.9800,23.7300", **ATHENS}, "inserted": 3, "updated": 0}
    first = stored(factory)
    assert [(row.time, row.temperature_c, row.irradiance_wm2, row.cloud_cover_pct, row.is_forecast)
            for row in first] == [(datetime(2026, 3, 1, h), 10.0 + h, 420.5, 40.0, False)
                                  for h in range(3)]  # fmt: skip
    again = post(client, world, body)
    assert again.json["inserted"] == 0 and again.json["updated"] == 3
    assert stored(factory) == first and count(factory, WeatherLocation) == 1
    # a correction replaces the hour's value
    fix = ATHENS | {"observations": [{"timestamp": "2026-03-01T02:00:00+02:00", "temperature_c": -1.5}]}
    assert post(client, world, fix).json["updated"] == 1
    assert stored(factory)[0].temperature_c == -1.5 and stored(factory)[0].irradiance_wm2 is None


@pytest.mark.parametrize(
    "body, field, index",
    [
        ({"latitude": 95, "longitude": 23.7}, "latitude", None),
        ({"latitude": 37.9, "longitude": None}, "longitude", None),
        ({"latitude": "37.9", "longitude": 23.7}, "latitude", None),
        (ATHENS | {"observations": []}, "observations", None),
        (ATHENS | {"place": "x"}, "place", None),
        (ATHENS | {"observations": hours(2) + [{"timestamp": "2026-03-01T05:00:00"}]}, "timestamp", 2),
        (ATHENS | {"observations": hours(2) + [{"timestamp": "2026-03-01T05:00:00Z"}]}, "temperature_c", 2),
        (ATHENS | {"observations": hours(2, temperature_c=75)}, "temperature_c", 0),
        (ATHENS | {"observations": hours(2, irradiance_wm2=-3)}, "irradiance_wm2", 1),
        (ATHENS | {"observations": hours(2, cloud_cover=101)}, "cloud_cover", 0),
        (ATHENS | {"observations": hours(2, cloud_cover=True)}, "cloud_cover", 0),
        (ATHENS | {"observations": hours(2, wind=3)}, "wind", 0),
        (ATHENS | {"observations": hours(2) + hours(1)}, "timestamp", 2),  # the same hour twice
        (ATHENS | {"observations": hours(1, start=datetime.now(UTC) + timedelta(hours=2))}, "timestamp", 0),
    ],
)
def test_bad_weather_is_refused_with_details_and_nothing_is_stored(
    client, world, factory, body, field, index
):
    good = ATHENS | {"observations": hours(2)}
    r = post(client, world, good | body if "observations" not in body else body)
    assert r.status_code == 422, r.json
    assert r.json["error"] == "Invalid or missing input"
    assert any(d["field"] == field and d.get("index") == index for d in r.json["details"]), r.json["details"]
    assert count(factory, WeatherObservation) == 0 and count(factory, WeatherLocation) == 0


def test_only_admins_post_weather(client, world, factory):
    body = ATHENS | {"observations": hours(1)}
    for role in ("analyst", "consumer", "partner", "api_key"):
        assert post(client, world, body, role).status_code == 403
    assert client.post("/api/v1/weather", json=body).status_code == 401
    assert count(factory, WeatherObservation) == 0


def test_too_many_observations_is_413(client, world, factory, app):
    limit = app.server.extensions["aggregator"].settings.max_batch_readings
    r = post(client, world, ATHENS | {"observations": hours(limit + 1)})
    assert r.status_code == 413 and count(factory, WeatherObservation) == 0


def test_openapi_documents_the_weather_endpoint(client):
    op = client.get("/api/openapi.json").json["paths"]["/api/v1/weather"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["latitude", "longitude", "observations"]
    assert op["x-roles"] == ["admin"]


# ---- import-csv --kind weather ---------------------------------------------------------------------------


def cli(pg_url, tmp_path, *args):
    env = os.environ | {
        "DATABASE_URL": pg_url,
        "DATA_DIR": str(tmp_path),
        "DEMO_DATA": "0",
        "SECRET_KEY": TEST_SECRET,
    }
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_weather_csv_is_imported_whole_or_not_at_all(app, pg_url, tmp_path, factory):
    good = tmp_path / "weather.csv"
    good.write_text("timestamp,temperature_c,irradiance_wm2,cloud_cover\n"
                    "2026-03-01T00:00:00Z,8.5,0,90\n2026-03-01T01:00:00Z,8.1,,\n")  # fmt: skip
    args = ("import-csv", "--kind", "weather", "--latitude", "37.98", "--longitude", "23.73")
    out = cli(pg_url, tmp_path, *args, str(good))
    assert out.returncode == 0, out.stderr
    assert "2 new hours, 0 replaced" in out.stdout
    assert [(r.time.hour, r.temperature_c, r.irradiance_wm2, r.cloud_cover_pct) for r in stored(factory)] == [
        (0, 8.5, 0.0, 90.0),
        (1, 8.1, None, None),
    ]
    assert "0 new hours, 2 replaced" in cli(pg_url, tmp_path, *args, str(good)).stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,temperature_c\n2026-03-02T00:00:00Z,7\n2026-03-02T01:00:00,warm\n")
    out = cli(pg_url, tmp_path, *args, str(bad))
    assert out.returncode == 2
    assert "'line': 3" in out.stderr and "needs a UTC offset" in out.stderr
    assert "temperature_c" in out.stderr and "must be a number" in out.stderr
    header = tmp_path / "header.csv"
    header.write_text("time,temp\n2026-03-02T00:00:00Z,7\n")
    assert "expected timestamp,temperature_c" in cli(pg_url, tmp_path, *args, str(header)).stderr
    assert cli(pg_url, tmp_path, "import-csv", "--kind", "weather", str(good)).returncode != 0  # no location
    assert len(stored(factory)) == 2


def test_cli_help_documents_the_weather_import():
    out = subprocess.run([sys.executable, "-m", "dashboard", "import-csv", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "--kind {readings,weather}" in out.stdout and "temperature_c" in out.stdout


# ---- load_weather -----------------------------------------------------------------------------------------


def put(factory, latitude, longitude, rows):
    with factory() as s:
        upsert_rows(s, location_at(s, latitude, longitude, create=True), rows, replace_observations=False)
        s.commit()


def offset(lat, lon, km_north):
    return lat + km_north / 111.195, lon  # one degree of latitude is 111.195 km


def test_load_weather_reads_the_nearest_location_within_50_km(app, factory):
    start, end = pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-02", tz="UTC")
    near, far = offset(37.98, 23.73, 20), offset(37.98, 23.73, -40)
    put(factory, *near, [WeatherRow(datetime(2026, 3, 1, h), 20.0) for h in range(24)])
    put(factory, *far, [WeatherRow(datetime(2026, 3, 1, h), 5.0) for h in range(24)])
    assert 19.9 < distance_km(37.98, 23.73, *near) < 20.1
    with factory() as s:
        frame = forecasting.load_weather(s, Place("Europe/Athens", "GR", 37.98, 23.73), start, end)
        # one location's rows, never a mean of several
        assert list(frame.columns) == ["temperature_c", "irradiance_wm2", "cloud_cover"]
        assert str(frame.index.tz) == "UTC" and len(frame) == 24 and (frame["temperature_c"] == 20.0).all()
        assert frame["irradiance_wm2"].isna().all() and frame["cloud_cover"].isna().all()
        # nearer to the second: its rows
        place = Place("Europe/Athens", "GR", *offset(37.98, 23.73, -30))
        assert (forecasting.load_weather(s, place, start, end)["temperature_c"] == 5.0).all()
        # nothing within 50 km, or no coordinates: no weather
        assert (
            forecasting.load_weather(s, Place("Europe/Athens", "GR", *offset(*near, 51)), start, end) is None
        )
        assert forecasting.load_weather(s, Place("Europe/Athens", "GR", None, None), start, end) is None
        # [start, end)
        half = forecasting.load_weather(s, Place("Europe/Athens", "GR", *near), start + pd.Timedelta(hours=6),
                                        start + pd.Timedelta(hours=12))  # fmt: skip
        assert list(half.index.hour) == [6, 7, 8, 9, 10, 11]


def test_forecast_rows_fill_hours_without_observations_until_observed(app, factory):
    place = Place("Europe/Athens", "GR", 37.98, 23.73)
    start, end = pd.Timestamp("2026-03-01 00:00", tz="UTC"), pd.Timestamp("2026-03-01 06:00", tz="UTC")
    put(factory, 37.98, 23.73, [WeatherRow(datetime(2026, 3, 1, h), 10.0) for h in range(3)])
    put(factory, 37.98, 23.73, [WeatherRow(datetime(2026, 3, 1, h), 99.0, 100.0, 50.0, is_forecast=True)
                                for h in range(2, 6)])  # fmt: skip
    with factory() as s:
        frame = forecasting.load_weather(s, place, start, end)
    # hour 2 keeps its observation (a forecast never overwrites one); 3-5 are forecasts
    assert list(frame["temperature_c"]) == [10.0, 10.0, 10.0, 99.0, 99.0, 99.0]
    assert math.isnan(frame["irradiance_wm2"].iloc[2]) and frame["irradiance_wm2"].iloc[3] == 100.0
    # the observation of hour 3 arrives and replaces the forecast row
    put(factory, 37.98, 23.73, [WeatherRow(datetime(2026, 3, 1, 3), 11.0)])
    with factory() as s:
        frame = forecasting.load_weather(s, place, start, end)
        rows = s.execute(select(WeatherObservation.time, WeatherObservation.is_forecast)
                         .order_by(WeatherObservation.time)).all()  # fmt: skip
    assert list(frame["temperature_c"]) == [10.0, 10.0, 10.0, 11.0, 99.0, 99.0]
    assert [f for _t, f in rows] == [False, False, False, False, True, True]


def test_two_requests_creating_the_same_location_at_once_share_it(app, factory):
    """The second insert of a new point waits on the first's unique name, then loses: it must use the
    location the first one committed, not fail with a 500."""
    import threading

    from dashboard.schema import WeatherLocation
    from dashboard.weather.store import location_at

    first = factory()
    mine = location_at(first, 40.1234, 22.5678, create=True)  # inserted, not committed yet
    result: dict = {}

    def second() -> None:
        with factory() as s:
            found = location_at(s, 40.1234, 22.5678, create=True)  # blocks on the uncommitted name
            s.commit()
            result["id"] = found.id

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive()  # the second insert is waiting for the first transaction
    first.commit()
    thread.join(timeout=10)
    assert result["id"] == mine.id
    first.close()
    assert count(factory, WeatherLocation) == 1
