"""Open-Meteo (no key): the archive API for days the reanalysis has, the forecast API for the recent past
and the next hours. Asked for hourly `temperature_2m`, `shortwave_radiation`, `cloud_cover` in UTC.

Open-Meteo labels `shortwave_radiation` by the END of the hour it averages (its "preceding hour mean"),
while rows here are labelled by the start, as readings are: the value at T+1h describes the hour from T.
Temperature and cloud cover are instants, kept at their own time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import requests

from dashboard.weather.observations import WeatherRow, check_number
from dashboard.weather.provider import WeatherUnavailable

log = logging.getLogger(__name__)
HOURLY = ("temperature_2m", "shortwave_radiation", "cloud_cover")
OURS = ("temperature_c", "irradiance_wm2", "cloud_cover")  # the same, in this app's names and ranges
HOUR = timedelta(hours=1)
ARCHIVE_LAG_DAYS = 5  # the archive (ERA5) trails real time by about five days; the forecast API covers them


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class OpenMeteo:
    name = "open-meteo"

    def __init__(self, forecast_url: str, archive_url: str, timeout_s: float = 20,
                 clock: Callable[[], datetime] = _utcnow, http: requests.Session | None = None):  # fmt: skip
        self.forecast_url, self.archive_url, self.timeout_s = forecast_url, archive_url, timeout_s
        self.clock = clock
        self.http = http or requests.Session()

    def fetch(self, latitude: float, longitude: float, start: datetime, end: datetime) -> list[WeatherRow]:
        now_hour = self.clock().replace(minute=0, second=0, microsecond=0)
        split = now_hour.date() - timedelta(days=ARCHIVE_LAG_DAYS)  # first day asked of the forecast API
        values: dict[datetime, tuple] = {}
        if start.date() < split:
            last = min(end.date(), split - timedelta(days=1))
            values |= self._get(self.archive_url, latitude, longitude, start_date=start.date(), end_date=last)
        if end.date() >= split:
            # the radiation of the last hour is labelled `end` (see the module docstring): ask through it
            first = max(start, datetime.combine(split, datetime.min.time()))
            values |= self._get(self.forecast_url, latitude, longitude,
                                start_hour=first, end_hour=end)  # fmt: skip
        rows = []
        hour = start.replace(minute=0, second=0, microsecond=0)
        hour = hour if hour >= start else hour + HOUR
        while hour < end:
            temperature, _, cloud = values.get(hour, (None, None, None))
            irradiance = values.get(hour + HOUR, (None, None, None))[1]
            if not (temperature is None and irradiance is None and cloud is None):
                rows.append(WeatherRow(hour, temperature, irradiance, cloud, is_forecast=hour >= now_hour))
            hour += HOUR
        return rows

    def _get(self, url: str, latitude: float, longitude: float, **window) -> dict[datetime, tuple]:
        params = {"latitude": f"{latitude:.4f}", "longitude": f"{longitude:.4f}", "hourly": ",".join(HOURLY),
                  "timezone": "UTC"}  # fmt: skip
        for key, value in window.items():
            params[key] = value.isoformat() if isinstance(value, date) and not isinstance(value, datetime) \
                else value.strftime("%Y-%m-%dT%H:%M")  # fmt: skip
        try:
            response = self.http.get(url, params=params, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise WeatherUnavailable(f"{url}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code != 200:
            raise WeatherUnavailable(f"{url}: HTTP {response.status_code} {_reason(response)}")
        try:
            return _parse(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise WeatherUnavailable(f"{url}: not Open-Meteo's hourly format ({exc})") from exc


def _reason(response: requests.Response) -> str:
    try:
        return str(response.json().get("reason", ""))[:200]  # Open-Meteo's {"error": true, "reason"}
    except ValueError:
        return response.text[:200]


def _number(name: str, value) -> float | None:
    """A value in range, else None (a provider's gap); something not a number breaks the body."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    try:
        return check_number(name, value)
    except ValueError:
        return None


def _parse(body: dict) -> dict[datetime, tuple]:
    """{hour: (temperature_c, radiation labelled at this hour, cloud_cover)} from the documented body."""
    if body.get("utc_offset_seconds", 0) != 0:
        raise ValueError("times not in UTC")
    hourly = body["hourly"]
    times = hourly["time"]
    columns = [hourly.get(name) or [None] * len(times) for name in HOURLY]
    if any(len(c) != len(times) for c in columns):
        raise ValueError("hourly arrays of different lengths")
    out = {}
    for i, text in enumerate(times):
        ts = datetime.fromisoformat(text)
        ts = ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts
        out[ts] = tuple(_number(name, c[i]) for name, c in zip(OURS, columns, strict=True))
    return out
