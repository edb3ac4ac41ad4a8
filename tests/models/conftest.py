"""Series for forecaster tests: the demo aggregate (20 houses) and an independent synthetic load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import demo

END = pd.Timestamp("2026-11-01", tz="UTC")


@pytest.fixture(scope="session")
def demo_series():
    """One year of the demo's 20-house aggregate: consumption (meters) and production (PV + parks), 15 min."""
    plan = demo.plan_demo(20)
    frame = pd.concat(demo.generate_readings(plan, END - pd.Timedelta(days=365), END))
    part = frame["device_key"].str.split("-").str[1]
    consumption = frame[part == "MAIN"].groupby("timestamp")["energy_wh"].sum() / 1000
    production = frame[part.isin(["PV", "INV"])].groupby("timestamp")["energy_wh"].sum() / 1000
    weather = demo.generate_weather(plan, END - pd.Timedelta(days=365), END).set_index("time")
    return {"consumption": consumption, "production": production, "weather": weather}


@pytest.fixture(scope="session")
def synthetic_hourly():
    """An independent aggregate load: 200 households with their own daily/weekly shapes, an AR(1)
    temperature driving heating and cooling, holidays and noise; nothing from the demo generator.
    Returns (load kWh, weather observations)."""
    rng = np.random.default_rng(42)
    idx = pd.date_range("2025-01-01", periods=240 * 24, freq="h", tz="UTC")
    local = idx.tz_convert("Europe/Berlin")
    hour = local.hour.to_numpy() + 0.5
    dow = local.day_of_week.to_numpy()
    doy = local.day_of_year.to_numpy()
    temp = np.empty(len(idx))
    temp[0] = 5.0
    seasonal = 10 - 10 * np.cos(2 * np.pi * (doy - 20) / 365) + 4 * np.sin(2 * np.pi * (hour - 9) / 24)
    for i in range(1, len(idx)):
        temp[i] = seasonal[i] + 0.97 * (temp[i - 1] - seasonal[i - 1]) + rng.normal(0, 0.6)
    morning = np.exp(-0.5 * ((hour - 7.5) / 1.2) ** 2)
    evening = np.exp(-0.5 * ((hour - 19.5) / 2.0) ** 2)
    midday = np.exp(-0.5 * ((hour - 13) / 2.5) ** 2)
    weekend = (dow >= 5).astype(float)
    shape = 0.35 + 0.5 * morning * (1 - 0.6 * weekend) + 0.9 * evening + 0.4 * midday * (1 + weekend)
    heating = 0.04 * np.clip(15 - temp, 0, None)
    cooling = 0.06 * np.clip(temp - 24, 0, None)
    load = 200 * (shape + heating + cooling) * rng.lognormal(0, 0.08, len(idx))
    weather = pd.DataFrame({"temperature_c": temp}, index=idx)
    return pd.Series(load, index=idx, name="kwh"), weather
