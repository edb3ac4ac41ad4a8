"""Writes the demo data set (dashboard/demo.py) into the database, with demo users of every role.

Readings go through the same raw insert and rollup code as live ingestion, in chunks, with a progress
bar; the whole seed is one transaction per house, so an interrupted seed leaves whole houses only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from dashboard import demo
from dashboard.auth import create_api_key, create_user
from dashboard.clock import utcnow
from dashboard.ingest import insert_new_readings
from dashboard.metering import with_layouts
from dashboard.rollups import DeviceInfo, RollupAccumulator, rebuild_fleet, upsert_rollups
from dashboard.schema import (
    PV,
    Community,
    Device,
    House,
    InjectedAnomaly,
    PVPark,
    WeatherLocation,
    WeatherObservation,
)


@dataclass
class DemoLogins:
    lines: list[str]

    def text(self) -> str:
        return "\n".join(self.lines)


def database_is_empty(session: Session) -> bool:
    return session.scalar(select(func.count()).select_from(House)) == 0


def _create_metadata(session: Session, plan: demo.DemoPlan) -> dict[str, DeviceInfo]:
    now = utcnow()
    communities = {c["key"]: Community(name=c["name"], created_at=now) for c in plan.communities}
    session.add_all(communities.values())
    parks = {
        p["key"]: PVPark(
            name=p["name"],
            capacity_kw=p["capacity_kw"],
            community=communities.get(p["community_key"]),
            created_at=now,
        )
        for p in plan.pv_parks
    }
    session.add_all(parks.values())
    houses = {}
    pvs = {}
    for h in plan.houses:
        house = House(name=h.name, created_at=now)
        if h.community_key:
            house.communities.append(communities[h.community_key])
        houses[h.key] = house
        if h.pv_kwp:
            pvs[h.key] = PV(house=house, name=f"{h.name} rooftop PV", capacity_kwp=h.pv_kwp, created_at=now)
    session.add_all(list(houses.values()) + list(pvs.values()))
    session.flush()
    devices = []
    for d in plan.devices:
        house = houses.get(d.house_key) if d.house_key else None
        devices.append(
            Device(
                serial=d.key,
                name=d.name,
                kind=d.kind,
                direction=d.direction,
                house_id=house.id if house else None,
                pv_park_id=parks[d.pv_park_key].id if d.pv_park_key else None,
                pv_id=pvs[d.house_key].id if d.kind == "pv" and d.house_key in pvs else None,
                created_at=now,
            )
        )
    session.add_all(devices)
    session.flush()
    infos = with_layouts(
        DeviceInfo(d.id, d.serial, d.house_id, d.pv_park_id, d.kind, d.direction) for d in devices
    )
    return {d.serial: d for d in infos}


def _store_frame(
    session: Session, frame: pd.DataFrame, devices: dict[str, DeviceInfo], timezone: str, fleet: bool = True
) -> int:
    """Store one frame of readings and add them to the rollups; `fleet=False` leaves the fleet's rows to
    the caller (seed_demo sums them once, at the end)."""
    ids = frame["device_key"].map(lambda k: devices[k].id)
    ts = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    records = pd.DataFrame(
        {
            "device_id": ids.astype(int),
            "ts": ts,
            "power_w": frame["power_w"].astype(float),
            "energy_wh": frame["energy_wh"].astype(float),
            "energy_derived": False,
            "voltage_v": frame["voltage_v"].astype(float),
            "current_a": frame["current_a"].astype(float),
            "power_factor": frame["power_factor"].astype(float),
        }
    ).to_dict("records")
    for r in records:
        r["ts"] = r["ts"].to_pydatetime()
    inserted = insert_new_readings(session, records)
    acc = RollupAccumulator(timezone, fleet=fleet)
    by_id = {d.id: d for d in devices.values()}
    for r in records:
        if (r["device_id"], r["ts"]) in inserted:
            acc.add(by_id[r["device_id"]], r["ts"], r["energy_wh"], r["voltage_v"], r["power_factor"])
    upsert_rollups(session, acc.records())
    return len(inserted)


def seed_demo(
    factory: sessionmaker[Session],
    timezone: str,
    houses: int = 20,
    days: int = 60,
    end: datetime | None = None,
    seed: int = 7,
    progress: bool = True,
) -> DemoLogins:
    """Create the demo community, houses, devices, readings, weather, ground truth and users."""
    now = datetime.now(UTC)
    end_utc = end or now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    end_ts = pd.Timestamp(end_utc).tz_convert("UTC") if end_utc.tzinfo else pd.Timestamp(end_utc, tz="UTC")
    start_ts = end_ts - pd.Timedelta(days=days)
    plan = demo.plan_demo(n_houses=houses, seed=seed, timezone=timezone)
    with factory() as session:
        devices = _create_metadata(session, plan)
        # names are encrypted at rest (dashboard/fieldcrypt.py): matched here, not by the database
        by_name = {name: i for i, name in session.execute(select(House.id, House.name))}
        house_ids = {h.key: by_name.get(h.name) for h in plan.houses}
        weather = demo.generate_weather(plan, start_ts, end_ts)
        # the demo site is the default place (LATITUDE, LONGITUDE): the fleet and the houses read it
        session.add(WeatherLocation(name="demo-site", latitude=plan.latitude, longitude=plan.longitude))
        session.flush()
        session.execute(
            WeatherObservation.__table__.insert(),
            [
                {
                    "location": "demo-site",
                    "latitude": plan.latitude,
                    "longitude": plan.longitude,
                    "time": row.time.tz_convert("UTC").tz_localize(None).to_pydatetime(),
                    "temperature_c": float(row.temperature_c),
                    "irradiance_wm2": float(row.irradiance_wm2),
                    "cloud_cover_pct": float(row.cloud_cover_pct),
                }
                for row in weather.itertuples()
            ],
        )
        truth = demo.injected_anomalies(plan, start_ts, end_ts, seed=seed)
        session.add_all(
            InjectedAnomaly(
                house_id=house_ids.get(row.house_key),
                device_id=devices[row.device_key].id if row.device_key in devices else None,
                kind=row.kind,
                start=row.start.tz_convert("UTC").tz_localize(None).to_pydatetime(),
                end=row.end.tz_convert("UTC").tz_localize(None).to_pydatetime(),
            )
            for row in truth.itertuples()
        )
        session.commit()
        frames = demo.generate_readings(plan, start_ts, end_ts, seed=seed)
        total = 0
        bar = tqdm(
            frames,
            total=len(plan.houses) + 1,
            desc="Seeding demo readings",
            unit="house",
            disable=not progress,
        )
        for frame in bar:
            total += _store_frame(session, frame, devices, timezone, fleet=False)
            session.commit()  # one transaction per house: an interrupted seed leaves whole houses
            bar.set_postfix(readings=total)
        # The fleet's rows summed once from the houses' and the park's, rather than upserted again with
        # every house (each house covers every bucket: that doubled the rollup writes, +36 % on a first
        # `make run`). In the last transaction, with the demo users: a seed interrupted before it has no
        # logins either (`python -m dashboard rebuild-fleet` sums the fleet of what was stored).
        rebuild_fleet(session)
        logins = _create_demo_users(session, list(house_ids.values()))
        session.commit()
    return logins


def _create_demo_users(session: Session, house_ids: list[int]) -> DemoLogins:
    """One login per role (consumers linked to their houses and those houses' communities)."""
    lines = ["Demo logins (random passwords, made on first start):"]
    accounts = [
        ("admin", "admin", []),
        ("analyst", "analyst", []),
        ("consumer", "consumer", house_ids[:1]),
        ("prosumer", "consumer", house_ids[1:3]),
        ("partner", "third_party", []),
    ]
    for username, role, houses in accounts:
        password = secrets.token_urlsafe(9)
        user = create_user(session, username, password, role, houses)
        for house in user.houses:
            for community in house.communities:
                if community not in user.communities:
                    user.communities.append(community)
        scope = f" (houses {', '.join(map(str, houses))})" if houses else ""
        lines.append(f"  {role:<11} username {username:<9} password {password}{scope}")
    _row, key = create_api_key(session, "demo third-party app")
    lines.append(f"  third_party API key (send as X-API-Key): {key}")
    return DemoLogins(lines)


def backfill_demo(
    factory: sessionmaker[Session], timezone: str, max_days: int = 14, progress: bool = True
) -> int:
    """After a restart, fill the gap since the last demo reading from the same deterministic model, so
    the demo's history stays continuous (at most `max_days`; older gaps stay gaps)."""
    from dashboard.schema import Measurement
    from dashboard.simulator import demo_plan_for

    plan = demo_plan_for(factory, timezone)
    if plan is None:
        return 0
    with factory() as session:
        last = session.scalar(select(func.max(Measurement.ts)))
        rows = session.execute(
            select(
                Device.id, Device.serial, Device.house_id, Device.pv_park_id, Device.kind, Device.direction
            )
        ).all()
    devices = {d.serial: d for d in with_layouts(DeviceInfo(*r) for r in rows)}
    now = pd.Timestamp.now(tz="UTC").floor("15min")
    start = max(
        pd.Timestamp(last, tz="UTC").floor("15min") + pd.Timedelta(minutes=15),
        now - pd.Timedelta(days=max_days),
    )
    if last is None or start >= now:
        return 0
    total = 0
    with factory() as session:
        for frame in tqdm(demo.generate_readings(plan, start, now), total=len(plan.houses) + 1,
                          desc="Backfilling demo readings", unit="house", disable=not progress):  # fmt: skip
            total += _store_frame(session, frame, devices, timezone)
            session.commit()
    return total
