"""The one small interface weather sources implement, and the choice among them (WEATHER_PROVIDER)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from dashboard.weather.observations import WeatherRow


class WeatherUnavailable(Exception):
    """The provider could not answer (timeout, HTTP error, a body that is not what it documents)."""


class WeatherProvider(Protocol):
    name: str

    def fetch(self, latitude: float, longitude: float, start: datetime, end: datetime) -> list[WeatherRow]:
        """Hourly rows in [start, end) (naive UTC hours); hours from now on are forecasts (`is_forecast`).
        Hours the provider has no values for are absent. Raises WeatherUnavailable."""
        ...


class NoWeather:
    """WEATHER_PROVIDER=none (the default): offline, weather comes only from the API and the CLI."""

    name = "none"

    def fetch(self, latitude: float, longitude: float, start: datetime, end: datetime) -> list[WeatherRow]:
        return []


def provider_from_settings(settings) -> WeatherProvider:
    if settings.weather_provider == "open-meteo":
        from dashboard.weather.open_meteo import OpenMeteo

        return OpenMeteo(
            settings.open_meteo_forecast_url, settings.open_meteo_archive_url, settings.weather_timeout_s
        )
    return NoWeather()
