"""The demo generator: deterministic, physically consistent, with exact anomaly ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import demo

END = pd.Timestamp("2026-07-15", tz="UTC")
START = END - pd.Timedelta(days=10)


@pytest.fixture(scope="module")
def plan():
    return demo.plan_demo(n_houses=6, seed=3)


@pytest.fixture(scope="module")
def frames(plan):
    return list(demo.generate_readings(plan, START, END))


def test_plan_has_every_kind_of_member(plan):
    kinds = {(d.kind, d.direction) for d in plan.devices}
    assert kinds == {("meter", "consumption"), ("appliance", "consumption"), ("pv", "production")}
    assert any(h.pv_kwp for h in plan.houses) and any(not h.pv_kwp for h in plan.houses)
    assert plan.pv_parks and all(p["community_key"] for p in plan.pv_parks)
    assert len({d.key for d in plan.devices}) == len(plan.devices)


def test_same_seed_same_data_and_windows_agree(plan, frames):
    again = list(demo.generate_readings(demo.plan_demo(n_houses=6, seed=3), START, END))
    pd.testing.assert_frame_equal(frames[0], again[0])
    inner = next(demo.generate_readings(plan, START + pd.Timedelta(hours=30), START + pd.Timedelta(hours=40)))
    merged = inner.merge(frames[0], on=["device_key", "timestamp"], suffixes=("", "_full"))
    assert len(merged) == len(inner) > 0
    assert np.allclose(merged["power_w"], merged["power_w_full"])


def test_grid_is_15_minute_utc_interval_starts(frames):
    ts = frames[0]["timestamp"]
    assert str(ts.dt.tz) == "UTC"
    assert (ts.dt.minute % 15 == 0).all() and (ts.dt.second == 0).all()
    assert ts.min() == START and ts.max() == END - pd.Timedelta(minutes=15)
    assert not frames[0].duplicated(["device_key", "timestamp"]).any()


def test_main_meter_is_never_below_its_appliances(plan, frames):
    for house, frame in zip(plan.houses, frames, strict=False):
        wide = frame.pivot(index="timestamp", columns="device_key", values="power_w")
        appliances = [c for c in wide if c.split("-")[1] in demo.APPLIANCES]
        assert (wide[f"{house.key}-MAIN"] + 1e-6 >= wide[appliances].sum(axis=1)).all()


def test_electrical_quantities_are_consistent(frames):
    f = pd.concat(frames)
    assert f["power_factor"].between(0.85, 1.0).all()
    powered = f[f["power_w"] > 1]
    assert np.allclose(
        powered["power_w"],
        powered["voltage_v"] * powered["current_a"] * powered["power_factor"],
        rtol=2e-3,
        atol=0.2,
    )  # current has 3 decimals
    assert np.allclose(f["energy_wh"], f["power_w"] * 0.25, atol=0.01)
    assert f["voltage_v"].between(190, 265).all() and f["voltage_v"].median() == pytest.approx(230, abs=3)


def test_pv_is_zero_at_night_and_peaks_near_local_noon(plan, frames):
    house = next(i for i, h in enumerate(plan.houses) if h.pv_kwp)
    pv = frames[house].query("device_key.str.endswith('-PV')").set_index("timestamp")["power_w"]
    local = pv.tz_convert("Europe/Athens")
    by_hour = local.groupby(local.index.hour).mean()
    assert by_hour.loc[[0, 1, 2, 3, 22, 23]].max() == 0
    assert 11 <= by_hour.idxmax() <= 14
    assert pv.max() <= 0.95 * plan.houses[house].pv_kwp * 1000 + 1e-6


def test_yearly_energy_matches_plan():
    plan = demo.plan_demo(n_houses=3, seed=1)
    frames = list(
        demo.generate_readings(
            plan, pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")
        )
    )
    for house, frame in zip(plan.houses, frames, strict=False):
        kwh = frame.groupby(frame["device_key"].str.split("-").str[1])["energy_wh"].sum() / 1000
        appliances = kwh[[a for a in house.appliances]].sum()
        assert kwh["MAIN"] - appliances == pytest.approx(house.annual_kwh, rel=0.1)  # the H0 base load
        if house.pv_kwp:
            assert 1200 <= kwh["PV"] / house.pv_kwp <= 1800  # kWh per kWp at 36-38 N


def test_every_injected_anomaly_is_in_the_readings(plan):
    start, end = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC")
    truth = demo.injected_anomalies(plan, start, end)
    assert {"consumption_spike", "stuck_meter", "voltage_sag", "voltage_swell"} <= set(truth["kind"])
    frames = {f["device_key"].iloc[0].split("-")[0]: f for f in demo.generate_readings(plan, start, end)}
    for row in truth.itertuples():
        f = frames[row.house_key]
        main = f[f["device_key"] == row.device_key].set_index("timestamp")
        inside = main[(main.index >= row.start) & (main.index < row.end)]
        assert len(inside) > 0
        if row.kind == "voltage_sag":
            assert (inside["voltage_v"] < 207).all()
        elif row.kind == "voltage_swell":
            assert (inside["voltage_v"] > 253).all()
        elif row.kind == "stuck_meter":
            assert inside["power_w"].nunique() == 1
        else:  # a spike or a night load is far above that house's usual level at those hours
            usual = main["power_w"].groupby(main.index.hour).median()
            assert inside["power_w"].mean() > 2 * usual.loc[inside.index.hour].mean()
    mains = pd.concat(frames.values()).query("device_key.str.endswith('-MAIN')")
    # no sag outside the ground truth (appliances and PV share their house's voltage, so count mains)
    assert (mains["voltage_v"] < 207).sum() == truth.query("kind == 'voltage_sag'").pipe(
        lambda t: sum(int((r.end - r.start) / pd.Timedelta(minutes=15)) for r in t.itertuples())
    )


def test_weather_is_in_range_and_hourly(plan):
    w = demo.generate_weather(plan, START, END)
    assert len(w) == 240 and w["time"].diff().dropna().eq(pd.Timedelta(hours=1)).all()
    assert w["temperature_c"].between(-20, 45).all() and w["irradiance_wm2"].between(0, 1200).all()
    assert w["cloud_cover_pct"].between(0, 100).all()


def test_live_reading_follows_the_same_model(plan):
    device = plan.devices[0]
    at = pd.Timestamp("2026-07-10T10:07:00Z")
    reading = demo.live_reading(plan, device, at)
    assert reading == demo.live_reading(plan, device, at)
    slot = next(demo.generate_readings(plan, at.floor("15min"), at.floor("15min") + pd.Timedelta(minutes=15)))
    expected = slot.loc[slot["device_key"] == device.key, "power_w"].iloc[0]
    assert reading["power_w"] == pytest.approx(expected, rel=0.15)
    assert pd.Timestamp(reading["timestamp"]) == at
