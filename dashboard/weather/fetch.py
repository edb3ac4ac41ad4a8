"""Keeping stored weather current from the provider: for each distinct place of the houses, communities and
defaults, the observation hours of the history window not stored yet, and the next hours' forecast.

Cached by construction: hours stored as observations are never asked for again, so after the first run
each place costs one small fetch per run (the hours since the last one and the forecast ahead).
Provider errors are logged per place and counted; they never raise (training and forecasting read only
the stored rows).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from dashboard.places import Place, distance_km, weather_places
from dashboard.weather.provider import WeatherProvider, WeatherUnavailable
from dashboard.weather.store import location_at, observed_hours, upsert_rows

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
AHEAD = timedelta(hours=48)  # forecast hours kept: a 24-hour forecast from any origin of the next day
SHARED_KM = 5.0  # places closer than this share one location's weather (weather models' grid is 1-10 km)
MERGE_GAP = timedelta(days=3)  # missing runs closer than this are asked for in one request


def missing_runs(have: set[datetime], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[a, b) runs of the hours in [start, end) not in `have`, runs less than MERGE_GAP apart merged."""
    runs: list[list[datetime]] = []
    hour = start
    while hour < end:
        if hour not in have:
            if runs and hour - runs[-1][1] < MERGE_GAP:
                runs[-1][1] = hour + HOUR
            else:
                runs.append([hour, hour + HOUR])
        hour += HOUR
    return [(a, b) for a, b in runs]


def refresh_weather(session_factory, provider: WeatherProvider, defaults: Place, history: timedelta,
                    now: datetime | None = None, ahead: timedelta = AHEAD) -> dict:  # fmt: skip
    """Fetch and store what is missing for every place; counts per outcome."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    now_hour = now.replace(minute=0, second=0, microsecond=0)
    counts = {"provider": provider.name, "places": 0, "fetches": 0, "inserted": 0, "updated": 0, "failed": 0}
    if provider.name == "none":
        return counts
    with session_factory() as session:
        places = weather_places(session, defaults)
    chosen: list[tuple[float, float]] = []
    for lat, lon in places:
        if all(distance_km(lat, lon, a, b) > SHARED_KM for a, b in chosen):
            chosen.append((lat, lon))
    counts["places"] = len(chosen)
    for lat, lon in chosen:
        try:
            with session_factory() as session:
                location = location_at(session, lat, lon, create=True)
                have = observed_hours(session, location, now_hour - history, now_hour)
                runs = missing_runs(have, now_hour - history, now_hour + ahead)
                for start, end in runs:
                    rows = provider.fetch(lat, lon, start, end)
                    counts["fetches"] += 1
                    inserted, updated = upsert_rows(session, location, rows, replace_observations=False)
                    session.commit()  # each run kept as soon as it is in: a later failure keeps it
                    counts["inserted"] += inserted
                    counts["updated"] += updated
        except WeatherUnavailable as exc:
            counts["failed"] += 1
            log.warning("Weather for (%.4f, %.4f) not fetched from %s: %s", lat, lon, provider.name, exc)
        except Exception:  # noqa: BLE001 - one place's failure must not stop the others
            counts["failed"] += 1
            log.exception("Weather for (%.4f, %.4f) not stored", lat, lon)
    return counts
