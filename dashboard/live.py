"""Live windows of raw readings for the Real-Time and Overview pages: the scope's devices, mean power per
bucket summed per direction, and each device's latest reading.

Sums follow the rollups' rule (`dashboard.rollups.DeviceInfo.house_share`: consumption = the load, production
= the PV, by each house's metering layout; appliances are sub-meters, never added on top).
A bucket in which no device of a direction reported is absent for that direction: a gap, never a zero.
"Latest reading" is one index probe per device on the (device_id, ts) primary key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, case, cast, false, func, literal_column, null, or_, select, true, tuple_
from sqlalchemy.orm import Session

from dashboard.choices import Choice
from dashboard.metering import with_layouts
from dashboard.rollups import DeviceInfo
from dashboard.schema import Device, House, Measurement, PVPark, community_houses
from dashboard.scope import Scope

SILENT_DEVICE = timedelta(minutes=15)  # a device whose latest reading is older is listed as silent


@dataclass(frozen=True)
class ScopeDevice:
    info: DeviceInfo
    name: str

    @property
    def id(self) -> int:
        return self.info.id


def device_filter(scope: Scope, choice: Choice):
    d = Device
    if choice.house_id is not None:
        scope.require_house(choice.house_id)  # resolve_choice checked it already; belt and braces
        return d.house_id == choice.house_id
    if choice.community_id is not None:
        houses = select(community_houses.c.house_id).where(
            community_houses.c.community_id == choice.community_id
        )
        in_houses = d.house_id.in_(houses)
        if not scope.all_houses:
            in_houses = in_houses & d.house_id.in_(sorted(scope.house_ids))
        parks = select(PVPark.id).where(PVPark.community_id == choice.community_id)
        return or_(in_houses, d.pv_park_id.in_(parks))
    if scope.all_houses:
        return true()  # every house and every PV park, as the rollups' "all" does
    return d.house_id.in_(sorted(scope.house_ids)) if scope.house_ids else false()


def scope_devices(session: Session, scope: Scope, choice: Choice) -> list[ScopeDevice]:
    """The devices of the chosen scope (a house, a community with its PV parks, or the whole scope)."""
    d = Device
    rows = session.execute(
        select(d.id, d.serial, d.name, d.house_id, d.pv_park_id, d.kind, d.direction)
        .where(device_filter(scope, choice))
        .order_by(d.id)
    ).all()
    names = {i: name for i, _serial, name, *_rest in rows}
    # a chosen house, community or scope holds every device of each of its houses: their layouts are here
    infos = with_layouts(
        DeviceInfo(i, serial, h, p, kind, direction) for i, serial, _n, h, p, kind, direction in rows
    )
    return [ScopeDevice(info, names[info.id]) for info in infos]


def _shares(devices: list[ScopeDevice]) -> dict[int, tuple[int, int]]:
    """Per device that counts, its (to consumption, to production) share, as in the rollups."""
    return {dev.id: share for dev in devices if (share := dev.info.house_share()) != (0, 0)}


def time_bucket(session: Session, column, step: timedelta):
    seconds = int(step.total_seconds())
    if session.get_bind().dialect.name == "postgresql":
        return func.date_bin(
            literal_column(f"interval '{seconds} seconds'"), column, literal_column("TIMESTAMP '2000-01-01'")
        )
    n = literal_column(str(seconds), Integer)  # SQLite: integer division floors to the bucket
    return func.datetime((cast(func.strftime("%s", column), Integer) // n) * n, "unixepoch")


def as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def power_buckets(
    session: Session, devices: list[ScopeDevice], start: datetime, end: datetime, step: timedelta
) -> list[tuple[datetime, float | None, float | None]]:
    """(bucket start, consumption W, production W) per bucket in [start, end) with at least one reading:
    each device's mean power in the bucket, summed per direction (None: no device of it reported)."""
    shares = _shares(devices)
    if not shares:
        return []
    m = Measurement
    per_device = (
        select(
            m.device_id, time_bucket(session, m.ts, step).label("bucket"), func.avg(m.power_w).label("mean_w")
        )
        .where(m.device_id.in_(sorted(shares)), m.ts >= start, m.ts < end)
        .group_by(m.device_id, literal_column("bucket"))
        .subquery()
    )

    def weighted(index: int):
        weights = {i: share[index] for i, share in shares.items() if share[index]}
        if not weights:
            return null()
        weight = case(weights, value=per_device.c.device_id)
        return func.sum(case((per_device.c.device_id.in_(sorted(weights)), per_device.c.mean_w * weight)))

    rows = session.execute(
        select(per_device.c.bucket, weighted(0), weighted(1))
        .group_by(per_device.c.bucket)
        .order_by(per_device.c.bucket)
    ).all()
    return [(as_datetime(bucket), cons, prod) for bucket, cons, prod in rows]


def mean_power(
    session: Session, devices: list[ScopeDevice], start: datetime, end: datetime
) -> tuple[float | None, float | None, int]:
    """(consumption W, production W, devices that reported) over [start, end): each device's mean power,
    summed per direction with the rollups' rule. None for a direction no device of which reported."""
    shares = _shares(devices)
    if not shares:
        return None, None, 0
    m = Measurement
    rows = session.execute(
        select(m.device_id, func.avg(m.power_w))
        .where(m.device_id.in_(sorted(shares)), m.ts >= start, m.ts < end)
        .group_by(m.device_id)
    ).all()
    sums: list[float | None] = [None, None]
    for device_id, mean_w in rows:
        for index, share in enumerate(shares[device_id]):
            if share:
                sums[index] = (sums[index] or 0.0) + share * mean_w
    return sums[0], sums[1], len(rows)


def latest_readings(session: Session, devices: list[ScopeDevice]) -> dict[int, datetime | None]:
    """Each device's latest reading time: one backward index probe per device on (device_id, ts)."""
    if not devices:
        return {}
    m = Measurement
    latest = select(func.max(m.ts)).where(m.device_id == Device.id).correlate(Device).scalar_subquery()
    rows = session.execute(select(Device.id, latest).where(Device.id.in_([dev.id for dev in devices])))
    return {device_id: (as_datetime(ts) if ts is not None else None) for device_id, ts in rows}


def meter_quality(
    session: Session, devices: list[ScopeDevice], latest: dict[int, datetime | None], now: datetime
) -> tuple[float | None, float | None, int]:
    """Mean voltage and power factor over the meters' latest readings of the last 15 minutes, and how
    many meters that covers."""
    pairs = [
        (dev.id, latest[dev.id])
        for dev in devices
        if dev.info.kind == "meter"
        and latest.get(dev.id) is not None
        and latest[dev.id] >= now - SILENT_DEVICE
    ]
    if not pairs:
        return None, None, 0
    m = Measurement
    voltage, pf = session.execute(
        select(func.avg(m.voltage_v), func.avg(m.power_factor)).where(tuple_(m.device_id, m.ts).in_(pairs))
    ).one()
    return voltage, pf, len(pairs)


def device_places(session: Session, devices: list[ScopeDevice]) -> dict[int, str]:
    """Where each device is: its house's or PV park's name."""
    houses = {dev.info.house_id for dev in devices if dev.info.house_id is not None}
    parks = {dev.info.pv_park_id for dev in devices if dev.info.pv_park_id is not None}
    names = {}
    if houses:
        names |= {
            ("h", i): n for i, n in session.execute(select(House.id, House.name).where(House.id.in_(houses)))
        }
    if parks:
        names |= {
            ("p", i): n
            for i, n in session.execute(select(PVPark.id, PVPark.name).where(PVPark.id.in_(parks)))
        }
    out = {}
    for dev in devices:
        key = ("h", dev.info.house_id) if dev.info.house_id is not None else ("p", dev.info.pv_park_id)
        out[dev.id] = names.get(key, "")
    return out


def scope_status(
    session: Session, scope: Scope, choice: Choice, now: datetime, silent_rows: int = 10
) -> dict:
    """The scope's devices, each one's latest reading, the meters' latest voltage and power factor, the
    last reading of all, and the silent devices (longest silent first; places of the first `silent_rows`)."""
    devices = scope_devices(session, scope, choice)
    latest = latest_readings(session, devices)
    voltage, pf, meters = meter_quality(session, devices, latest, now)
    last = max((ts for ts in latest.values() if ts is not None), default=None)
    silent = [
        (dev, latest.get(dev.id))
        for dev in devices
        if latest.get(dev.id) is None or latest[dev.id] < now - SILENT_DEVICE
    ]
    silent.sort(key=lambda item: (item[1] is not None, item[1] or now, item[0].info.serial))
    places = device_places(session, [dev for dev, _ts in silent[:silent_rows]])
    return {"devices": devices, "latest": latest, "voltage": voltage, "pf": pf, "meters": meters, "last": last,
            "silent": silent, "places": places}  # fmt: skip
