"""Scheduled maintenance: fetch the weather every place is missing (dashboard/weather/fetch.py).

Queued about once an hour by one training worker's maintenance pass (jobs/worker.py); the embedded app
runs the same refresh in its maintenance thread (jobs/embedded.py).
"""

from __future__ import annotations

from datetime import timedelta

from dashboard.context import worker_services
from dashboard.places import default_place
from dashboard.weather import provider_from_settings
from dashboard.weather.fetch import refresh_weather

FETCH_EVERY_S = 3600  # Open-Meteo's models update hourly at best


def fetch_weather() -> dict:

    svc = worker_services()
    settings = svc.settings
    return refresh_weather(
        svc.session_factory,
        provider_from_settings(settings),
        default_place(settings),
        timedelta(days=settings.weather_history_days),
    )
