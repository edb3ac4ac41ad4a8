"""Demo seeding, the live simulator and the restart backfill, on the real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from dashboard import demo
from dashboard.auth import authenticate
from dashboard.schema import (
    Device,
    EnergyRollup,
    House,
    InjectedAnomaly,
    Measurement,
    User,
    WeatherObservation,
)
from dashboard.seed import backfill_demo, seed_demo
from dashboard.simulator import demo_plan_for, in_process_sender, run_loop

END = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(app, factory):
    logins = seed_demo(factory, "Europe/Athens", houses=4, days=3, end=END, progress=False)
    return logins


def test_seed_creates_metadata_readings_rollups_weather_truth_and_logins(seeded, factory, app):
    plan = demo.plan_demo(n_houses=4)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(House)) == 4
        assert s.scalar(select(func.count()).select_from(Device)) == len(plan.devices)
        n = s.scalar(select(func.count()).select_from(Measurement))
        assert n == len(plan.devices) * 3 * 96
        assert s.scalar(select(func.count()).select_from(WeatherObservation)) == 72
        assert {u.role for u in s.scalars(select(User))} == {"admin", "analyst", "consumer", "third_party"}
        # rollups hold exactly the meters' and PV energy: appliances are not added on top
        frames = pd.concat(
            demo.generate_readings(plan, pd.Timestamp(END) - pd.Timedelta(days=3), pd.Timestamp(END))
        )
        counted = frames[~frames["device_key"].str.split("-").str[1].isin(demo.APPLIANCES)]
        total = s.scalar(
            select(func.sum(EnergyRollup.consumption_wh + EnergyRollup.production_wh)).where(
                EnergyRollup.resolution == "hour", EnergyRollup.entity_kind.in_(("house", "pv_park"))
            )
        )
        assert total == pytest.approx(counted["energy_wh"].sum(), rel=1e-9)
        truth = demo.injected_anomalies(plan, pd.Timestamp(END) - pd.Timedelta(days=3), pd.Timestamp(END))
        assert s.scalar(select(func.count()).select_from(InjectedAnomaly)) == len(truth)
    # the printed passwords work
    line = next(x for x in seeded.lines if "username analyst" in x)
    password = line.split("password ")[1].split()[0]
    with factory() as s:
        assert (
            authenticate(s, app.server.extensions["aggregator"].settings, "analyst", password, "test").role
            == "analyst"
        )


def test_simulator_feeds_live_readings_through_ingestion(seeded, factory):
    plan = demo_plan_for(factory, "Europe/Athens")
    assert plan is not None
    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    send = in_process_sender(factory, "Europe/Athens", 900)
    run_loop(send, plan, 1.05, threading.Event(), iterations=2)  # two distinct seconds
    with factory() as s:
        live = s.scalar(select(func.count()).select_from(Measurement).where(Measurement.ts >= before))
        energy = s.scalar(select(func.sum(Measurement.energy_wh)).where(Measurement.ts >= before))
    assert live == 2 * len(plan.devices)
    assert energy > 0


def test_restart_backfills_the_gap_from_the_same_model(seeded, factory):
    def quarter():  # what backfill_demo fills up to
        return pd.Timestamp.now(tz="UTC").floor("15min")

    before = quarter()
    added = backfill_demo(factory, "Europe/Athens", max_days=2, progress=False)
    plan = demo.plan_demo(n_houses=4)
    assert added % len(plan.devices) == 0 and added >= len(plan.devices) * 96  # two days x 96 slots each
    again = backfill_demo(factory, "Europe/Athens", max_days=2, progress=False)
    begun = (quarter() - before) // pd.Timedelta(minutes=15)  # quarter hours begun since the first call
    # nothing left to fill, except the quarter hours begun meanwhile (then whole slots of every device)
    assert again % len(plan.devices) == 0 and again // len(plan.devices) <= begun, (again, begun)
