"""The Open-Meteo provider against a local server serving recorded bodies in Open-Meteo's format, and the
refresh that stores its rows per place: observations and forecasts told apart, hours already observed
never asked for again, provider errors logged and nothing stored."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.places import Place
from dashboard.schema import Community, House, WeatherLocation, WeatherObservation
from dashboard.weather import WeatherUnavailable, provider_from_settings
from dashboard.weather.fetch import refresh_weather
from dashboard.weather.open_meteo import OpenMeteo
from tests.conftest import TEST_SECRET, make_settings
from tests.open_meteo_server import OpenMeteoServer, load

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = Place("Europe/Athens", "GR", 37.98, 23.73)
NOON = datetime(2026, 3, 10, 12, 20)  # "now" for the recorded forecast body (06:00-16:00 UTC that day)


@pytest.fixture
def server():
    with OpenMeteoServer() as s:
        yield s


def provider(server, now=NOON, timeout_s=2.0) -> OpenMeteo:
    return OpenMeteo(server.forecast_url, server.archive_url, timeout_s, clock=lambda: now)


def rows_of(factory) -> list[tuple]:
    with factory() as s:
        return s.execute(
            select(WeatherObservation.time, WeatherObservation.temperature_c, WeatherObservation.irradiance_wm2,
                   WeatherObservation.cloud_cover_pct, WeatherObservation.is_forecast)
            .order_by(WeatherObservation.time)
        ).all()  # fmt: skip


def test_old_days_come_from_the_archive_labelled_by_the_start_of_their_hour(server):
    rows = provider(server).fetch(37.98, 23.73, datetime(2026, 1, 1, 0), datetime(2026, 1, 1, 6))
    path, params = server.requests[0]
    assert len(server.requests) == 1 and path == "/v1/archive"
    assert params == {"latitude": "37.9800", "longitude": "23.7300", "timezone": "UTC", "start_date": "2026-01-01",
                      "end_date": "2026-01-01", "hourly": "temperature_2m,shortwave_radiation,cloud_cover"}  # fmt: skip
    body = load("archive.json")["hourly"]
    assert [r.time for r in rows] == [datetime(2026, 1, 1, h) for h in range(6)]
    assert [r.temperature_c for r in rows] == body["temperature_2m"][:6]
    # Open-Meteo labels radiation by the end of its hour: 06:00's 8 W/m2 is the hour from 05:00
    assert [r.irradiance_wm2 for r in rows] == body["shortwave_radiation"][1:7]
    assert not any(r.is_forecast for r in rows)


def test_refresh_stores_observations_and_forecasts_and_asks_only_for_hours_not_observed(app, factory, server):
    history, ahead = timedelta(hours=6), timedelta(hours=3)
    counts = refresh_weather(factory, provider(server), DEFAULTS, history, now=NOON, ahead=ahead)
    assert counts == {"provider": "open-meteo", "places": 1, "fetches": 1, "inserted": 9, "updated": 0,
                      "failed": 0}  # fmt: skip
    assert server.requests == [("/v1/forecast", {"latitude": "37.9800", "longitude": "23.7300", "timezone": "UTC",
                                "hourly": "temperature_2m,shortwave_radiation,cloud_cover",
                                "start_hour": "2026-03-10T06:00", "end_hour": "2026-03-10T15:00"})]  # fmt: skip
    rows = rows_of(factory)
    assert [(r.time.hour, r.is_forecast) for r in rows] == [(h, h >= 12) for h in range(6, 15)]
    assert rows[0].temperature_c == 8.1 and rows[0].irradiance_wm2 == 12.0 and rows[0].cloud_cover_pct == 20
    assert rows[3].cloud_cover_pct is None  # null in the body: unknown, not zero

    # an hour later: 06-11 are observed and not asked again; 12 (a forecast) is, and becomes an observation
    server.requests.clear()
    counts = refresh_weather(factory, provider(server, NOON + timedelta(hours=1)), DEFAULTS, history,
                             now=NOON + timedelta(hours=1), ahead=ahead)  # fmt: skip
    assert (counts["inserted"], counts["updated"], counts["failed"]) == (1, 3, 0)
    assert [(p, q["start_hour"], q["end_hour"]) for p, q in server.requests] == [
        ("/v1/forecast", "2026-03-10T12:00", "2026-03-10T16:00")
    ]
    assert [(r.time.hour, r.is_forecast) for r in rows_of(factory)] == [(h, h >= 13) for h in range(6, 16)]


def test_every_distinct_place_is_fetched_once_and_near_places_share_one(app, factory, server):
    now = datetime.now(UTC).replace(tzinfo=None)
    with factory() as s:
        s.add_all([
            House(name="Near the default", created_at=now, latitude=37.99, longitude=23.74),  # about 1.4 km
            House(name="Patras", created_at=now, latitude=38.25, longitude=21.73),
            Community(name="Patras again", created_at=now, latitude=38.25, longitude=21.73),
            House(name="No coordinates", created_at=now, timezone="Europe/Athens"),
        ])  # fmt: skip
        s.commit()
    counts = refresh_weather(factory, provider(server), DEFAULTS, timedelta(hours=6), now=NOON,
                             ahead=timedelta(hours=3))  # fmt: skip
    assert counts["places"] == 2 and counts["failed"] == 0
    asked = sorted((q["latitude"], q["longitude"]) for _p, q in server.requests)
    assert asked == [("37.9800", "23.7300"), ("38.2500", "21.7300")]
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(WeatherLocation)) == 2


@pytest.mark.parametrize("mode", ["500", "400", "not-json", "slow"])
def test_provider_errors_are_logged_and_store_nothing(app, factory, server, mode, caplog):
    server.mode, server.slow_s = mode, 1.5
    with pytest.raises(WeatherUnavailable):
        provider(server, timeout_s=0.5).fetch(
            37.98, 23.73, datetime(2026, 3, 10, 6), datetime(2026, 3, 10, 9)
        )
    with caplog.at_level(logging.WARNING, logger="dashboard.weather.fetch"):
        counts = refresh_weather(factory, provider(server, timeout_s=0.5), DEFAULTS, timedelta(hours=6),
                                 now=NOON, ahead=timedelta(hours=3))  # fmt: skip
    assert counts["failed"] == 1 and counts["inserted"] == 0
    assert "not fetched from open-meteo" in caplog.text
    if mode == "400":
        assert "out of allowed range" in caplog.text  # Open-Meteo's reason is kept
    assert rows_of(factory) == []


def test_the_provider_is_chosen_by_the_environment(tmp_path, server):
    assert provider_from_settings(make_settings(tmp_path)).name == "none"  # offline by default
    chosen = provider_from_settings(make_settings(tmp_path, WEATHER_PROVIDER="open-meteo",
                                                  OPEN_METEO_FORECAST_URL=server.forecast_url))  # fmt: skip
    assert chosen.name == "open-meteo" and chosen.forecast_url == server.forecast_url
    assert chosen.archive_url == "https://archive-api.open-meteo.com/v1/archive"
    with pytest.raises(ValueError, match="WEATHER_PROVIDER"):
        make_settings(tmp_path, WEATHER_PROVIDER="dark-sky")


def cli(pg_url, tmp_path, *args, **env):
    full = os.environ | {"DATABASE_URL": pg_url, "DATA_DIR": str(tmp_path), "DEMO_DATA": "0",
                         "SECRET_KEY": TEST_SECRET} | env  # fmt: skip
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_fetch_weather_command_asks_the_configured_provider_for_the_default_place(
    app, pg_url, tmp_path, server
):
    out = cli(pg_url, tmp_path, "fetch-weather")
    assert out.returncode != 0 and "WEATHER_PROVIDER is none" in out.stderr and server.requests == []
    before = datetime.now(UTC).replace(tzinfo=None)
    out = cli(pg_url, tmp_path, "fetch-weather", "--days", "2", WEATHER_PROVIDER="open-meteo",
              OPEN_METEO_FORECAST_URL=server.forecast_url, OPEN_METEO_ARCHIVE_URL=server.archive_url,
              LATITUDE="38.25", LONGITUDE="21.73")  # fmt: skip
    after = datetime.now(UTC).replace(tzinfo=None)
    assert out.returncode == 0, out.stderr
    assert "Weather from open-meteo: 1 places, 1 fetches" in out.stdout
    (path, params), *_ = server.requests
    assert path == "/v1/forecast" and (params["latitude"], params["longitude"]) == ("38.2500", "21.7300")
    start = datetime.fromisoformat(params["start_hour"])  # the two days of history asked for, to the hour

    def floor_hour(t: datetime) -> datetime:
        return t.replace(minute=0, second=0, microsecond=0)

    # the CLI's own hour, 48 h back: between the hours read before and after it (equal unless one began)
    assert floor_hour(before) - timedelta(hours=48) <= start <= floor_hour(after) - timedelta(hours=48)
