"""Calendar and sun features for any timestamps: local time (DST-aware), holidays, solar elevation."""

from __future__ import annotations

from functools import lru_cache

import holidays
import numpy as np
import pandas as pd


@lru_cache(maxsize=16)
def _holidays(country: str, years: tuple[int, ...]):
    """`country`: ISO 3166-1 alpha-2 ("AU") or an ISO 3166-2 subdivision ("AU-VIC"), whose own public
    holidays (Melbourne Cup day) count too."""
    if not country:
        return {}
    code, _, subdiv = country.partition("-")
    return holidays.country_holidays(code, subdiv=subdiv or None, years=list(years))


def calendar_features(times: pd.DatetimeIndex, timezone: str, country: str) -> dict[str, np.ndarray]:
    """Features of interval starts `times` (UTC), read in local time."""
    local = times.tz_convert(timezone)
    hour = (local.hour + local.minute / 60).to_numpy(float)
    dow = local.day_of_week.to_numpy()
    doy = local.day_of_year.to_numpy()
    public = _holidays(country, tuple(sorted(set(local.year)))) if len(local) else {}
    holiday = np.array([d in public for d in local.date], dtype=float)
    return {
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "hour": hour,
        "dow": dow.astype(float),
        "weekend_or_holiday": ((dow >= 5) | (holiday > 0)).astype(float),
        "holiday": holiday,
        "doy_sin": np.sin(2 * np.pi * doy / 365.25),
        "doy_cos": np.cos(2 * np.pi * doy / 365.25),
    }


def solar_elevation_deg(
    times: pd.DatetimeIndex, latitude: float, longitude: float, step: pd.Timedelta
) -> np.ndarray:
    """Sun elevation at the middle of each interval (Cooper declination, equation of time): the shape of
    clear-sky production, zero-or-below at night. Accurate to about a degree, plenty for a feature."""
    mid = times + step / 2
    doy = mid.day_of_year.to_numpy()
    b = 2 * np.pi * (doy - 81) / 364
    eot_min = 9.87 * np.sin(2 * b) - 7.53 * np.cos(b) - 1.5 * np.sin(b)
    utc_hours = (mid.hour + mid.minute / 60).to_numpy(float)
    solar_time = utc_hours + longitude / 15 + eot_min / 60
    hour_angle = np.radians(15 * (solar_time - 12))
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365)
    lat = np.radians(latitude)
    sin_el = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return np.degrees(np.arcsin(np.clip(sin_el, -1, 1)))
