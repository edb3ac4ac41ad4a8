"""Where a house, a community or the fleet is: time zone, holiday calendar and coordinates.

A scope's place is resolved field by field: the house's own value, else its community's (when it is in
exactly one), else the environment's defaults (TIMEZONE, HOLIDAY_COUNTRY, LATITUDE, LONGITUDE). The
coordinates travel as a pair, so a latitude is never mixed with another place's longitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.orm import Session

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Place:
    timezone: str
    country: str
    latitude: float | None
    longitude: float | None

    def config_fields(self) -> dict:
        """The ForecastConfig fields this place sets (coordinates only when known)."""
        fields = {"timezone": self.timezone, "country": self.country}
        if self.latitude is not None and self.longitude is not None:
            fields |= {"latitude": self.latitude, "longitude": self.longitude}
        return fields

    @classmethod
    def of_config(cls, cfg) -> Place:
        """The place a ForecastConfig (e.g. the one stored in a trained model) was built for."""
        return cls(cfg.timezone, cfg.country, cfg.latitude, cfg.longitude)


def default_place(settings) -> Place:
    return Place(settings.timezone, settings.holiday_country, settings.latitude, settings.longitude)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


# ---- resolution -----------------------------------------------------------------------------------------


def _merge(own, fallback: Place) -> Place:
    has_coordinates = own.latitude is not None and own.longitude is not None
    return Place(
        own.timezone or fallback.timezone,
        own.country or fallback.country,
        own.latitude if has_coordinates else fallback.latitude,
        own.longitude if has_coordinates else fallback.longitude,
    )


def place_of(session: Session, scope_kind: str, scope_id: int | None, defaults: Place) -> Place:
    """The place of a forecast scope ('house', 'community' or 'all'); unknown ids get the defaults."""
    from dashboard.schema import Community, House

    if scope_kind == "house" and (house := session.get(House, scope_id)) is not None:
        communities = house.communities
        fallback = _merge(communities[0], defaults) if len(communities) == 1 else defaults
        return _merge(house, fallback)
    if scope_kind == "community" and (community := session.get(Community, scope_id)) is not None:
        return _merge(community, defaults)
    return defaults


def weather_places(session: Session, defaults: Place) -> list[tuple[float, float]]:
    """The distinct coordinates weather is needed for: the defaults', then every community's and house's
    own (a house without its own inherits one of these)."""
    from sqlalchemy import select

    from dashboard.schema import Community, House

    out: list[tuple[float, float]] = []
    if defaults.latitude is not None and defaults.longitude is not None:
        out.append((defaults.latitude, defaults.longitude))
    for model in (Community, House):
        rows = session.execute(
            select(model.latitude, model.longitude)
            .where(model.latitude.is_not(None), model.longitude.is_not(None))
            .order_by(model.id)
        ).all()
        out += [(float(lat), float(lon)) for lat, lon in rows]
    seen, distinct = set(), []
    for lat, lon in out:
        key = (round(lat, 4), round(lon, 4))
        if key not in seen:
            seen.add(key)
            distinct.append(key)
    return distinct
