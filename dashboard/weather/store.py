"""Weather rows in the database: one location's rows, upserted idempotently on (location, hour), and the
lookup a house, a community or the fleet reads its weather through (the nearest location within 50 km)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.places import Place, distance_km
from dashboard.schema import WeatherLocation, WeatherObservation
from dashboard.weather.observations import WeatherRow

NEAREST_KM = 50.0  # farther than this, another place's weather says little about this one
SAME_POINT_DEG = 5e-5  # coordinates are kept to 4 decimals (about 10 m)
CHUNK = 2000
COLUMNS = ("temperature_c", "irradiance_wm2", "cloud_cover")


def location_at(
    session: Session, latitude: float, longitude: float, create: bool = False
) -> WeatherLocation | None:
    """The location stored at these coordinates (to 4 decimals), created when asked."""
    lat, lon = round(latitude, 4), round(longitude, 4)
    found = session.scalar(
        select(WeatherLocation)
        .where(
            WeatherLocation.latitude.between(lat - SAME_POINT_DEG, lat + SAME_POINT_DEG),
            WeatherLocation.longitude.between(lon - SAME_POINT_DEG, lon + SAME_POINT_DEG),
        )
        .order_by(WeatherLocation.id)
        .limit(1)
    )
    if found is None and create:
        candidate = WeatherLocation(name=f"{lat:.4f},{lon:.4f}", latitude=lat, longitude=lon)
        try:
            with session.begin_nested():  # a savepoint: a lost race rolls back only this insert
                session.add(candidate)
            found = candidate
        except IntegrityError:  # another request created the same point just now: use theirs
            found = location_at(session, latitude, longitude)
    return found


def nearest_location(
    session: Session, latitude: float, longitude: float, max_km: float = NEAREST_KM
) -> WeatherLocation | None:
    """The stored location nearest to the point (haversine), if one is within `max_km`."""
    best, best_km = None, max_km
    for location in session.scalars(select(WeatherLocation).order_by(WeatherLocation.id)):
        km = distance_km(latitude, longitude, location.latitude, location.longitude)
        if km <= best_km:
            best, best_km = location, km
    return best


def upsert_rows(
    session: Session, location: WeatherLocation, rows: Iterable[WeatherRow], replace_observations: bool
) -> tuple[int, int]:
    """Store rows at the location; (inserted, updated). An hour's stored forecast is always replaced; a
    stored observation only when `replace_observations` (posted data corrects, a fetch never overwrites)."""
    rows = list(rows)
    if not rows:
        return 0, 0
    table = WeatherObservation.__table__
    existing = dict(
        session.execute(
            select(table.c.time, table.c.is_forecast).where(
                table.c.location == location.name,
                table.c.time >= min(r.time for r in rows),
                table.c.time <= max(r.time for r in rows),
            )
        ).all()
    )
    replaced = [r for r in rows if r.time in existing and (replace_observations or existing[r.time])]
    new = [r for r in rows if r.time not in existing]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    records = [
        {"location": location.name, "latitude": location.latitude, "longitude": location.longitude,
         "time": r.time, "temperature_c": r.temperature_c, "irradiance_wm2": r.irradiance_wm2,
         "cloud_cover_pct": r.cloud_cover, "is_forecast": r.is_forecast}
        for r in new + replaced
    ]  # fmt: skip
    for i in range(0, len(records), CHUNK):
        stmt = insert(table).values(records[i : i + CHUNK])
        update = {
            c: stmt.excluded[c] for c in ("temperature_c", "irradiance_wm2", "cloud_cover_pct", "is_forecast")
        }
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["location", "time"],
                set_=update,
                where=None if replace_observations else table.c.is_forecast,
            )
        )
    return len(new), len(replaced)


def observed_hours(
    session: Session, location: WeatherLocation, start: datetime, end: datetime
) -> set[datetime]:
    """Hours in [start, end) the location has an observation (not a forecast) for."""
    table = WeatherObservation.__table__
    return set(
        session.scalars(
            select(table.c.time).where(
                table.c.location == location.name,
                table.c.time >= start,
                table.c.time < end,
                table.c.is_forecast.is_(False),
            )
        )
    )


def weather_frame(
    session: Session, place: Place, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame | None:
    """One location's rows in [start, end) for the place, observations and (where none yet) forecasts:
    a UTC-indexed frame of `temperature_c`, `irradiance_wm2`, `cloud_cover` (NaN where unknown), or None."""
    if place.latitude is None or place.longitude is None:
        return None
    location = nearest_location(session, place.latitude, place.longitude)
    if location is None:
        return None
    table = WeatherObservation.__table__
    rows = session.execute(
        select(table.c.time, table.c.temperature_c, table.c.irradiance_wm2, table.c.cloud_cover_pct)
        .where(
            table.c.location == location.name,
            table.c.time >= _naive_utc(start),
            table.c.time < _naive_utc(end),
        )
        .order_by(table.c.time)
    ).all()
    if not rows:
        return None
    index = pd.DatetimeIndex([r[0] for r in rows], name="time").tz_localize("UTC")
    return pd.DataFrame([r[1:] for r in rows], index=index, columns=list(COLUMNS), dtype=float)


def _naive_utc(ts: pd.Timestamp) -> datetime:
    ts = pd.Timestamp(ts)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def store_observations(
    session: Session, latitude: float, longitude: float, rows: list[WeatherRow]
) -> tuple[WeatherLocation, int, int]:
    """Posted or imported observations at a point: (location, inserted, updated). They replace whatever
    the hours held (a forecast, or an earlier value being corrected); the caller commits."""
    location = location_at(session, latitude, longitude, create=True)
    inserted, updated = upsert_rows(session, location, rows, replace_observations=True)
    return location, inserted, updated
