"""Demo data that looks real to an energy analyst (pure: numpy, pandas, pvlib, holidays): BDEW H0
households, sub-metered appliances, PV from pvlib on a typical year, voltage and power factor, and
injected anomalies listed by `injected_anomalies`. Deterministic per (seed, house, UTC day), so any
window, the seeder and the live simulator agree. The model: docs/data-rules.md, "Demo data".
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd
import pvlib

from dashboard.demo_profiles import h0_power_w

LATITUDE, LONGITUDE = 37.98, 23.73
STEP = pd.Timedelta(minutes=15)
SLOTS = 96
APPLIANCES = ("HVAC", "EV", "WASH", "WATER")
APPLIANCE_NAMES = {
    "HVAC": "Heat pump",
    "EV": "EV charger",
    "WASH": "Washing machine",
    "WATER": "Water heater",
}
APPLIANCE_PF = {"HVAC": 0.9, "EV": 0.99, "WASH": 0.88, "WATER": 1.0}
ANOMALY_RATE_PER_HOUSE_DAY = 0.015
SAG_RATE, SWELL_RATE = 0.01, 0.008


@dataclass(frozen=True)
class DemoDevice:
    key: str
    house_key: str | None
    pv_park_key: str | None
    kind: str
    direction: str
    name: str


@dataclass(frozen=True)
class DemoHouse:
    key: str
    name: str
    annual_kwh: float
    pv_kwp: float | None
    community_key: str | None
    appliances: tuple[str, ...] = ()
    shift_min: float = 0.0
    hvac_w_per_k: float = 40.0
    pv_tilt: float = 30.0
    pv_azimuth: float = 180.0
    voltage_offset: float = 0.0


@dataclass(frozen=True)
class DemoPlan:
    houses: list[DemoHouse]
    communities: list[dict]
    pv_parks: list[dict]
    devices: list[DemoDevice]
    latitude: float = LATITUDE
    longitude: float = LONGITUDE
    timezone: str = "Europe/Athens"
    seed: int = 7
    country: str = "GR"
    cache_key: tuple = field(default=(), compare=False)


def plan_demo(n_houses: int = 20, seed: int = 7, timezone: str = "Europe/Athens") -> DemoPlan:
    """Communities, houses (about 40 % prosumers, about 70 % in a community), devices and PV parks."""
    rng = np.random.default_rng([seed, 0])
    communities = [
        {"key": "C1", "name": "Kifisia Energy Community"},
        {"key": "C2", "name": "Marousi Solar Coop"},
    ]
    if n_houses >= 10:
        communities.append({"key": "C3", "name": "Chalandri Green Homes"})
    parks = [
        {"key": f"PARK{i + 1}", "name": f"{c['name']} PV Park", "community_key": c["key"], "capacity_kw": cap}
        for i, (c, cap) in enumerate(zip(communities[:2], (30.0, 20.0), strict=False))  # kW, community scale
    ]
    houses, devices = [], []
    for i in range(n_houses):
        key = f"H{i + 1:03d}"
        prosumer = i in (1, 2) or rng.random() < 0.35
        extras = [a for a in ("EV", "WASH", "WATER") if rng.random() < 0.45][:2]
        house = DemoHouse(
            key=key,
            name=f"House {i + 1}",
            annual_kwh=float(round(rng.uniform(2000, 4500), -1)),  # base load; appliances add on top
            pv_kwp=float(round(rng.uniform(3, 8) * 2) / 2) if prosumer else None,
            community_key=communities[int(rng.integers(len(communities)))]["key"]
            if rng.random() < 0.7
            else None,
            appliances=("HVAC", *extras),
            shift_min=float(rng.uniform(-45, 45)),
            hvac_w_per_k=float(rng.uniform(25, 55)),  # electric input of a heat pump (COP about 3)
            pv_tilt=float(rng.uniform(20, 35)),
            pv_azimuth=float(180 + rng.uniform(-25, 25)),
            voltage_offset=float(rng.normal(0, 1.5)),
        )
        houses.append(house)
        devices.append(DemoDevice(f"{key}-MAIN", key, None, "meter", "consumption", "Main meter"))
        devices += [
            DemoDevice(f"{key}-{a}", key, None, "appliance", "consumption", APPLIANCE_NAMES[a])
            for a in house.appliances
        ]
        if house.pv_kwp:
            devices.append(DemoDevice(f"{key}-PV", key, None, "pv", "production", "Rooftop PV inverter"))
    devices += [
        DemoDevice(f"{p['key']}-INV", None, p["key"], "pv", "production", "Park inverter") for p in parks
    ]
    return DemoPlan(houses, communities, parks, devices, timezone=timezone, seed=seed,
                    cache_key=(n_houses, seed, timezone))  # fmt: skip


# ---- weather -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _tmy() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """TMY3 columns against the solar hour of the year at the middle of each hourly record."""
    path = os.path.join(os.path.dirname(pvlib.__file__), "data", "723170TYA.CSV")
    df, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
    labels = df.index.tz_localize(None)  # local standard time, labelling the END of each hour
    mid = labels - pd.Timedelta(minutes=30)
    solar_offset_h = meta["longitude"] / 15.0 - meta["TZ"]  # solar time minus local standard time
    x = (
        (mid.day_of_year.to_numpy() - 1) * 24
        + mid.hour.to_numpy()
        + mid.minute.to_numpy() / 60
        + solar_offset_h
    )
    order = np.argsort(x)
    cols = {
        "temp": df["temp_air"].to_numpy(float),
        "ghi": df["ghi"].to_numpy(float),
        "dni": df["dni"].to_numpy(float),
        "dhi": df["dhi"].to_numpy(float),
        "cloud": df["TotCld (tenths)"].to_numpy(float) * 10,
    }
    return x[order], {k: v[order] for k, v in cols.items()}


def _weather_at(times_utc: pd.DatetimeIndex, longitude: float) -> dict[str, np.ndarray]:
    solar = times_utc.tz_localize(None) + pd.to_timedelta(longitude / 15.0, unit="h")
    doy = solar.day_of_year.to_numpy()
    leap_after_feb = solar.is_leap_year & (doy > 59)
    doy = np.where(leap_after_feb, doy - 1, doy)
    hoy = (
        (doy - 1) * 24 + solar.hour.to_numpy() + solar.minute.to_numpy() / 60 + solar.second.to_numpy() / 3600
    )
    x, cols = _tmy()
    return {k: np.interp(hoy, x, v, period=8760) for k, v in cols.items()}


def generate_weather(plan: DemoPlan, start, end) -> pd.DataFrame:
    """Hourly weather at the site: time (UTC), temperature_c, irradiance_wm2 (GHI), cloud_cover_pct."""
    times = pd.date_range(
        pd.Timestamp(start).ceil("h"), pd.Timestamp(end), freq="h", inclusive="left", tz="UTC"
    )
    w = _weather_at(times, plan.longitude)
    return pd.DataFrame(
        {
            "time": times,
            "temperature_c": w["temp"].round(1),
            "irradiance_wm2": np.clip(w["ghi"], 0, None).round(1),
            "cloud_cover_pct": np.clip(w["cloud"], 0, 100).round(0),
        }
    )


# ---- one UTC day at the site (shared by every house) -------------------------------------------------


@lru_cache(maxsize=1024)  # shared by every house: keep about two years of site days
def _site_day(day: int, timezone: str, country: str, latitude: float, longitude: float) -> dict:
    times = pd.date_range(pd.Timestamp.fromordinal(day, tz="UTC"), periods=SLOTS, freq=STEP)
    mid = times + STEP / 2
    local = mid.tz_convert(timezone)
    public = (
        holidays.country_holidays(country, years=sorted({local[0].year, local[-1].year})) if country else {}
    )
    weekday = local.day_of_week.to_numpy()
    is_holiday = np.array([d in public for d in local.date])
    day_type = np.where((weekday == 6) | is_holiday, 2, np.where(weekday == 5, 1, 0))
    w = _weather_at(mid, longitude)
    sp = pvlib.solarposition.get_solarposition(mid, latitude, longitude)
    return {
        "times": times,
        "local_hour": (local.hour + local.minute / 60).to_numpy(float),
        "day_type": day_type,
        "doy": local.day_of_year.to_numpy(),
        "weather": w,
        "zenith": sp["apparent_zenith"].to_numpy(),
        "azimuth": sp["azimuth"].to_numpy(),
        "elevation": sp["apparent_elevation"].to_numpy(),
    }


@lru_cache(maxsize=1)
def _h0_norm() -> float:
    """Scale so that H0 power averages 1,000 kWh/a exactly over a calendar year."""
    hours = pd.date_range("2025-01-01", periods=8760, freq="h", tz="Europe/Athens")
    wd = hours.day_of_week.to_numpy()
    day_type = np.where(wd == 6, 2, np.where(wd == 5, 1, 0))
    mean = h0_power_w(hours.hour.to_numpy(float) + 0.5, day_type, hours.day_of_year.to_numpy()).mean()
    return (1_000_000 / 8760) / mean


def _pv_power_w(site: dict, kwp: float, tilt: float, azimuth: float) -> np.ndarray:
    w = site["weather"]
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azimuth, site["zenith"], site["azimuth"], np.clip(w["dni"], 0, None), np.clip(w["ghi"], 0, None),
        np.clip(w["dhi"], 0, None), model="isotropic",
    )["poa_global"]  # fmt: skip
    poa = np.nan_to_num(np.asarray(poa, dtype=float))
    cell = pvlib.temperature.faiman(poa, w["temp"], wind_speed=1.5)
    dc = pvlib.pvsystem.pvwatts_dc(poa, cell, kwp * 1000.0, -0.004)
    ac = np.clip(np.asarray(dc) * 0.86, 0, 0.95 * kwp * 1000.0)
    return np.where(site["elevation"] > 0, ac, 0.0)


def _events(plan: DemoPlan, h: int, day: int) -> list[tuple[str, int, int, float]]:
    """Anomalies of house h on a UTC day: (kind, first slot, end slot exclusive, magnitude)."""
    rng = np.random.default_rng([plan.seed, h, day, 1])
    out = []
    if rng.random() < ANOMALY_RATE_PER_HOUSE_DAY:
        kind = ("consumption_spike", "stuck_meter", "night_load")[int(rng.integers(3))]
        if kind == "consumption_spike":
            first = int(rng.integers(24, 64))  # starts between 06:00 and 16:00 UTC
            out.append((kind, first, first + int(rng.integers(4, 13)), float(rng.uniform(3, 5))))
        elif kind == "stuck_meter":
            first = int(rng.integers(0, SLOTS - 48))
            out.append((kind, first, first + int(rng.integers(24, 49)), 0.0))
        else:
            out.append((kind, 0, 12, float(rng.uniform(2000, 3000))))  # 00:00-03:00 UTC, deep night locally
    for kind, rate, lo, hi in (("voltage_sag", SAG_RATE, 195, 205), ("voltage_swell", SWELL_RATE, 254, 260)):
        if rng.random() < rate:
            first = int(rng.integers(0, SLOTS - 3))
            out.append((kind, first, first + int(rng.integers(1, 4)), float(rng.uniform(lo, hi))))
    return out


@lru_cache(maxsize=4096)
def _house_day(cache_key: tuple, h: int, day: int) -> dict[str, tuple[np.ndarray, ...]]:
    plan = _PLANS[cache_key]
    house = plan.houses[h]
    site = _site_day(day, plan.timezone, plan.country, plan.latitude, plan.longitude)
    rng = np.random.default_rng([plan.seed, h, day, 0])
    lh = (site["local_hour"] - house.shift_min / 60) % 24
    base = h0_power_w(lh, site["day_type"], site["doy"]) * _h0_norm() * house.annual_kwh / 1000.0
    noise = np.empty(SLOTS)
    e = rng.normal(0, 0.18, SLOTS)
    noise[0] = e[0]
    for i in range(1, SLOTS):
        noise[i] = 0.6 * noise[i - 1] + e[i]
    base = base * rng.lognormal(0, 0.1) * np.clip(1 + noise, 0.35, None)
    temp = site["weather"]["temp"]
    occupied = np.where((site["local_hour"] >= 6) & (site["local_hour"] < 23), 1.0, 0.5)
    parts: dict[str, np.ndarray] = {}
    for a in house.appliances:
        p = np.zeros(SLOTS)
        if a == "HVAC":
            demand = (
                np.clip(15 - temp, 0, None) * house.hvac_w_per_k
                + np.clip(temp - 24, 0, None) * 1.3 * house.hvac_w_per_k
            )
            p = demand * occupied * rng.uniform(0.7, 1.2, SLOTS)
        elif a == "EV" and rng.random() < 3 / 7:
            first = int(rng.integers(64, 80))  # plugged in between 16:00 and 20:00 UTC
            p[first : first + int(rng.integers(6, 15))] = 3700.0
        elif a == "WASH" and rng.random() < 0.5:
            first = int(rng.integers(28, 72))
            p[first : first + 3] = 1800.0
        elif a == "WATER":
            for lo, hi in ((16, 24), (68, 80)):
                first = int(rng.integers(lo, hi))
                p[first : first + int(rng.integers(2, 5))] = 2500.0
        parts[a] = p
    main = base + sum(parts.values(), np.zeros(SLOTS))
    pv = _pv_power_w(site, house.pv_kwp, house.pv_tilt, house.pv_azimuth) if house.pv_kwp else None
    volts = 230 + house.voltage_offset + 1.5 * np.sin(2 * np.pi * (site["local_hour"] - 9) / 24)
    volts = volts - 0.8 * main / 1000 + (0.0 if pv is None else 1.2 * pv / 1000) + rng.normal(0, 0.6, SLOTS)
    volts = np.clip(volts, 216, 244)
    for kind, first, end, mag in _events(plan, h, day):
        if kind == "consumption_spike":
            main[first:end] *= mag
        elif kind == "stuck_meter":
            main[first:end] = main[first:end].max()
        elif kind == "night_load":
            main[first:end] += mag
        else:
            volts[first:end] = mag
    pf_main = np.clip(0.99 - 0.12 * np.exp(-main / 600) + rng.normal(0, 0.008, SLOTS), 0.85, 1.0)
    out = {f"{house.key}-MAIN": (main, volts, pf_main)}
    for a, p in parts.items():
        out[f"{house.key}-{a}"] = (p, volts + rng.normal(0, 0.3, SLOTS), np.full(SLOTS, APPLIANCE_PF[a]))
    if pv is not None:
        out[f"{house.key}-PV"] = (pv, volts + 0.5, np.ones(SLOTS))
    return out


@lru_cache(maxsize=512)
def _park_day(cache_key: tuple, p: int, day: int) -> tuple[np.ndarray, ...]:
    plan = _PLANS[cache_key]
    park = plan.pv_parks[p]
    site = _site_day(day, plan.timezone, plan.country, plan.latitude, plan.longitude)
    rng = np.random.default_rng([plan.seed, 10_000 + p, day, 0])
    power = _pv_power_w(site, park["capacity_kw"], 25.0, 180.0)
    return power, 231 + rng.normal(0, 0.5, SLOTS), np.ones(SLOTS)


# Plans are deterministic in their cache_key (house count, seed, time zone): the caches key on it.
_PLANS: dict[tuple, DemoPlan] = {}


def _register(plan: DemoPlan) -> tuple:
    _PLANS.setdefault(plan.cache_key, plan)
    return plan.cache_key


def _frame(device_arrays: dict[str, tuple[np.ndarray, ...]], times: pd.DatetimeIndex) -> pd.DataFrame:
    frames = []
    for key, (power, volts, pf) in device_arrays.items():
        power = np.round(np.clip(power, 0, None), 2)
        frames.append(
            pd.DataFrame(
                {
                    "device_id": key,
                    "timestamp": times,
                    "power_w": power,
                    "energy_wh": np.round(power * 0.25, 3),
                    "voltage_v": np.round(volts, 2),
                    "current_a": np.round(power / (volts * pf), 3),
                    "power_factor": np.round(pf, 3),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).rename(columns={"device_id": "device_key"})


def _days(start, end) -> tuple[pd.Timestamp, pd.Timestamp, range]:
    start = pd.Timestamp(start).tz_convert("UTC").floor(STEP)
    end = pd.Timestamp(end).tz_convert("UTC")
    return start, end, range(start.toordinal(), (end - pd.Timedelta(1)).toordinal() + 1)


def generate_readings(
    plan: DemoPlan, start, end, seed: int | None = None, step: str = "15min"
) -> Iterator[pd.DataFrame]:
    """Readings in [start, end) on the 15-minute UTC grid: one frame per house, then one for the parks."""
    if step != "15min":
        raise ValueError("The demo generator works on a 15-minute grid")
    plan_id = _register(plan)
    start, end, days = _days(start, end)
    for h in range(len(plan.houses)):
        parts = [_frame(_house_day(plan_id, h, d), _site_day(d, plan.timezone, plan.country,
                 plan.latitude, plan.longitude)["times"]) for d in days]  # fmt: skip
        frame = pd.concat(parts, ignore_index=True)
        yield frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)].reset_index(drop=True)
    parks = []
    for p, park in enumerate(plan.pv_parks):
        for d in days:
            times = _site_day(d, plan.timezone, plan.country, plan.latitude, plan.longitude)["times"]
            parks.append(_frame({f"{park['key']}-INV": _park_day(plan_id, p, d)}, times))
    if parks:
        frame = pd.concat(parks, ignore_index=True)
        yield frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)].reset_index(drop=True)


def injected_anomalies(plan: DemoPlan, start, end, seed: int | None = None) -> pd.DataFrame:
    """Ground truth of every anomaly `generate_readings` injects in [start, end), clipped to it."""
    start, end, days = _days(start, end)
    rows = []
    for h, house in enumerate(plan.houses):
        for d in days:
            day0 = pd.Timestamp.fromordinal(d, tz="UTC")
            for kind, first, last, _mag in _events(plan, h, d):
                s, e = max(day0 + first * STEP, start), min(day0 + last * STEP, end)
                if s < e:
                    rows.append({"house_key": house.key, "device_key": f"{house.key}-MAIN", "start": s, "end": e,
                                 "kind": kind})  # fmt: skip
    return pd.DataFrame(rows, columns=["house_key", "device_key", "start", "end", "kind"])


def live_reading(plan: DemoPlan, device: DemoDevice, at, seed: int | None = None) -> dict:
    """One reading at any instant, from the same model (the 15-minute slot's value plus 3 % noise)."""
    at = pd.Timestamp(at).tz_convert("UTC")
    day = at.toordinal()
    slot = int((at - pd.Timestamp.fromordinal(day, tz="UTC")) / STEP)
    plan_id = _register(plan)
    if device.pv_park_key:
        p = next(i for i, park in enumerate(plan.pv_parks) if park["key"] == device.pv_park_key)
        power, volts, pf = _park_day(plan_id, p, day)
    else:
        h = next(i for i, house in enumerate(plan.houses) if house.key == device.house_key)
        power, volts, pf = _house_day(plan_id, h, day)[device.key]
    rng = np.random.default_rng([plan.seed, zlib.crc32(device.key.encode()), int(at.timestamp())])
    p = max(0.0, float(power[slot]) * (1 + rng.normal(0, 0.03)))
    v = float(volts[slot]) + float(rng.normal(0, 0.3))
    return {
        "device_id": device.key,
        "timestamp": at.isoformat(),
        "power_w": round(p, 2),
        "voltage_v": round(v, 2),
        "current_a": round(p / (v * float(pf[slot])), 3),
        "power_factor": round(float(pf[slot]), 3),
    }
