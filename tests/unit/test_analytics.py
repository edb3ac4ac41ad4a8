"""Analytics maths: anomaly detection scored against the demo's ground truth, EN 50160 voltage events,
daily power factor across DST, and load profiles (pure functions, no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import analytics_anomalies, demo
from dashboard.analytics_anomalies import (
    AnomalyConfig,
    detect_anomalies_frame,
    flat_mask,
    hourly_baseline,
    leave_one_day_out_quantiles,
)
from dashboard.analytics_power import (
    load_profile_frame,
    power_factor_daily_frame,
    voltage_class,
    voltage_events_frame,
    voltage_summary,
)

TZ = "Europe/Athens"
CONSUMPTION_KINDS = {"consumption_spike", "stuck_meter", "night_load"}


def demo_frame(plan, start, end, sub_meters: bool = True) -> pd.DataFrame:
    """What the service reads: 15-minute main-meter power per house and, like the hourly appliance
    rollups, the sub-metered appliances' mean power per hour."""
    parts = []
    for f in demo.generate_readings(plan, start, end):
        main = f[f["device_key"].str.endswith("-MAIN")]
        if main.empty:
            continue  # the PV parks' frame
        kind = f["device_key"].str.split("-").str[1]
        appl = f[kind.isin(demo.APPLIANCES)].groupby("timestamp")["power_w"].sum()
        appl_hourly_kw = appl.groupby(appl.index.floor("h")).transform("mean") / 1000
        part = pd.DataFrame(
            {
                "house_id": main["device_key"].str.split("-").str[0],
                "ts": main["timestamp"],
                "power_kw": main["power_w"] / 1000,
            }
        )
        if sub_meters:
            part["explained_kw"] = part["ts"].map(appl_hourly_kw).fillna(0.0).to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def event_precision_recall(detected: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, float]:
    """Event level: a detection matches a truth of the same house whose time range it overlaps."""

    def overlaps(d, t) -> bool:
        return d.house_id == t.house_key and d.start < t.end and t.start < d.end

    found = [d for d in detected.itertuples() if any(overlaps(d, t) for t in truth.itertuples())]
    caught = [t for t in truth.itertuples() if any(overlaps(d, t) for d in detected.itertuples())]
    precision = len(found) / len(detected) if len(detected) else 1.0
    recall = len(caught) / len(truth) if len(truth) else 1.0
    return precision, recall


@pytest.mark.parametrize(
    "seed, first_day",
    [(3, "2025-01-10"), (11, "2025-07-05"), (29, "2025-10-01")],
)
def test_detector_finds_injected_anomalies_with_high_precision_and_recall(seed, first_day):
    plan = demo.plan_demo(n_houses=20, seed=seed)
    start = pd.Timestamp(first_day, tz="UTC")
    end = start + pd.Timedelta(days=45)
    frame = demo_frame(plan, start, end)
    truth = demo.injected_anomalies(plan, start, end)
    truth = truth[truth["kind"].isin(CONSUMPTION_KINDS)]
    assert len(truth) >= 5, "the window should hold enough anomalies to score"

    detected = detect_anomalies_frame(frame, TZ)
    precision, recall = event_precision_recall(detected, truth)
    main_only = detect_anomalies_frame(frame.drop(columns="explained_kw"), TZ)
    p_main, r_main = event_precision_recall(main_only, truth)
    print(
        f"\nseed {seed} from {first_day}: {len(truth)} injected, {len(detected)} detected; "
        f"precision {precision:.3f} recall {recall:.3f} "
        f"(main meter alone, no sub-meters: precision {p_main:.3f} recall {r_main:.3f})"
    )
    assert precision >= 0.8 and recall >= 0.8
    assert set(detected["kind"]) <= CONSUMPTION_KINDS


def test_detector_names_the_kind_it_saw():
    plan = demo.plan_demo(n_houses=20, seed=3)
    start = pd.Timestamp("2025-01-10", tz="UTC")
    end = start + pd.Timedelta(days=45)
    truth = demo.injected_anomalies(plan, start, end)
    truth = truth[truth["kind"].isin(CONSUMPTION_KINDS)]
    detected = detect_anomalies_frame(demo_frame(plan, start, end), TZ)
    agree = 0
    for t in truth.itertuples():
        kinds = detected[
            (detected["house_id"] == t.house_key) & (detected["start"] < t.end) & (detected["end"] > t.start)
        ]["kind"]
        agree += t.kind in set(kinds)
    assert agree >= 0.8 * len(truth)


def _house(values_kw, start="2026-03-02", house="H"):
    ts = pd.date_range(start, periods=len(values_kw), freq="15min", tz="UTC")
    return pd.DataFrame({"house_id": house, "ts": ts, "power_kw": values_kw})


def test_a_repeated_value_is_a_stuck_meter_but_zero_is_not():
    cfg = AnomalyConfig()
    values = np.array([0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.4] + [0.0] * 10 + [0.3])
    mask = flat_mask(values, cfg)
    assert mask[2:10].all() and not mask[:2].any() and not mask[10:].any()


def test_a_spike_against_a_quiet_history_is_one_event_with_its_times():
    rng = np.random.default_rng(0)
    values = 0.5 + rng.normal(0, 0.03, 96 * 21)
    values[96 * 10 + 40 : 96 * 10 + 48] *= 4  # two hours at four times the usual load
    frame = _house(values)
    events = detect_anomalies_frame(frame, TZ)
    assert len(events) == 1
    e = events.iloc[0]
    assert e["kind"] == "consumption_spike"
    assert e["start"] == frame["ts"].iloc[96 * 10 + 40] and e["end"] == frame["ts"].iloc[96 * 10 + 48]
    assert e["score"] == pytest.approx(4, rel=0.1)
    # a report window after the spike sees nothing, though the whole frame is history
    assert detect_anomalies_frame(frame, TZ, start=frame["ts"].iloc[96 * 11]).empty


# ---- the vectorised baseline equals the original loop -------------------------------------------------


def reference_hourly_baseline(power_kw, local_hour, weekend, day, cfg):
    """The first implementation, kept as the reference: np.quantile once per (day type, hour, day)."""
    n = len(power_kw)
    median, sigma, ceiling = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    valid = ~np.isnan(power_kw)
    for is_weekend in (False, True):
        for hour in range(24):
            near = np.abs((local_hour - hour + 12) % 24 - 12) <= cfg.pool_hours
            pool = valid & (weekend == is_weekend) & near
            target = (weekend == is_weekend) & (local_hour == hour)
            x = power_kw[pool]
            if len(x) < cfg.min_samples or not target.any():
                continue
            med = float(np.median(x))
            median[target] = med
            sigma[target] = float(np.median(np.abs(x - med))) * 1.4826
            wide = np.abs((local_hour - hour + 12) % 24 - 12) <= cfg.ceiling_pool_hours
            wide &= valid if not cfg.ceiling_by_daytype else valid & (weekend == is_weekend)
            y, y_day = power_kw[wide], day[wide]
            for d in np.unique(day[target]):
                others = y[y_day != d]
                if len(others) >= cfg.min_samples:
                    ceiling[target & (day == d)] = float(np.quantile(others, cfg.quantile))
    return median, sigma, ceiling


def assert_same_baseline(got, want) -> None:
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g[~np.isnan(g)], w[~np.isnan(w)], rtol=1e-12, atol=0)


def random_house(rng, days: int, ties: bool, gaps: float):
    """Readings on a 15-minute grid with a DST-like day (an hour missing, an hour twice) and gaps."""
    hour = np.tile(np.repeat(np.arange(24), 4), days)
    day = np.repeat(np.arange(days) * 86_400, 96) + 1_700_000_000
    if days > 3:  # one short day, one long day
        short = (day == day[96 * 2]) & (hour == 3)
        hour, day = hour[~short], day[~short]
        long_day = np.flatnonzero((day == day[-1]) & (hour == 2))
        hour, day = np.insert(hour, long_day, 2), np.insert(day, long_day, day[-1])
    power = rng.gamma(2.0, 0.3, len(hour))
    if ties:
        power = np.round(power, 1)  # many equal values: ranks must not matter, only the multiset
    power[rng.random(len(power)) < gaps] = np.nan
    weekend = ((day // 86_400) + 3) % 7 >= 5
    return power, hour, weekend, day


def test_leave_one_day_out_quantiles_equal_np_quantile_of_the_other_days():
    rng = np.random.default_rng(5)
    for trial in range(200):
        n_days = int(rng.integers(1, 12))
        y_day = rng.integers(0, n_days, int(rng.integers(0, 200)))
        y = rng.normal(size=len(y_day)).round(int(rng.integers(0, 3)))
        days = np.unique(np.concatenate([y_day, [n_days + 1]]))  # a day with no samples too
        q = float(rng.choice([0.0, 0.5, 0.9, 0.97, 1.0]))
        got = leave_one_day_out_quantiles(y, y_day, days, q, min_samples=5)
        for d, value in zip(days, got, strict=True):
            others = y[y_day != d]
            if len(others) < 5:
                assert np.isnan(value), trial
            else:
                assert value == pytest.approx(float(np.quantile(others, q)), rel=1e-12, abs=1e-15), trial


@pytest.mark.parametrize(
    "cfg",
    [
        AnomalyConfig(),
        AnomalyConfig(ceiling_by_daytype=True),
        AnomalyConfig(pool_hours=0, ceiling_pool_hours=0, min_samples=3),
        AnomalyConfig(pool_hours=2, ceiling_pool_hours=4, quantile=0.5, min_samples=40),
        AnomalyConfig(quantile=1.0, min_samples=1),
    ],
)
def test_hourly_baseline_equals_the_reference_on_random_houses(cfg):
    rng = np.random.default_rng(17)
    for days, ties, gaps in (
        (1, False, 0.0),
        (3, True, 0.3),
        (21, False, 0.05),
        (40, True, 0.1),
        (9, False, 1),
    ):
        args = random_house(rng, days, ties, gaps)
        assert_same_baseline(hourly_baseline(*args, cfg), reference_hourly_baseline(*args, cfg))


def test_hourly_baseline_and_detection_equal_the_reference_on_demo_houses(monkeypatch):
    plan = demo.plan_demo(n_houses=8, seed=11)
    start = pd.Timestamp("2025-10-01", tz="UTC")  # across the autumn DST change
    frame = demo_frame(plan, start, start + pd.Timedelta(days=45))
    cfg = AnomalyConfig()
    for _house, group in frame.groupby("house_id"):
        regular = analytics_anomalies._regular(group.assign(ts=pd.to_datetime(group["ts"], utc=True)))
        local = regular.index.tz_convert(TZ)
        unexplained = (regular["power_kw"] - regular["explained_kw"]).to_numpy(float)
        values = np.where(flat_mask(regular["power_kw"].to_numpy(float), cfg), np.nan, unexplained)
        args = (values, np.asarray(local.hour), np.asarray(local.day_of_week >= 5), local.normalize().asi8)
        assert_same_baseline(hourly_baseline(*args, cfg), reference_hourly_baseline(*args, cfg))

    fast = detect_anomalies_frame(frame, TZ)
    monkeypatch.setattr(analytics_anomalies, "hourly_baseline", reference_hourly_baseline)
    reference = detect_anomalies_frame(frame, TZ)
    assert len(fast) > 5
    pd.testing.assert_frame_equal(fast, reference)


# ---- voltage ------------------------------------------------------------------------------------------


def test_en50160_boundaries_are_exact():
    cls = voltage_class(np.array([207.0, 206.9, 253.0, 253.1, 11.5, 11.6, 0.0, 230.0]), 230.0)
    assert list(cls) == ["", "sag", "", "swell", "interruption", "sag", "interruption", ""]


def test_consecutive_readings_of_one_class_merge_into_one_event():
    ts = pd.date_range("2026-03-01", periods=10, freq="1min", tz="UTC")
    volts = [230, 206.9, 200.0, 205.0, 230, 11.5, 0.0, 254, 254.5, 231]
    df = pd.DataFrame({"house_id": 1, "device": "M1", "ts": ts, "voltage_v": volts})
    ev = voltage_events_frame(df, 230.0)
    assert list(ev["kind"]) == ["sag", "interruption", "swell"]
    sag = ev.iloc[0]
    assert sag["start"] == ts[1] and sag["end"] == ts[4] and sag["duration_s"] == 180
    assert sag["min_voltage_v"] == 200.0 and sag["max_voltage_v"] == 206.9 and sag["readings"] == 3
    assert ev.iloc[1]["duration_s"] == 120 and ev.iloc[2]["duration_s"] == 120
    summary = {(s["house_id"], s["kind"]): s for s in voltage_summary(ev, [1, 2])}
    assert summary[(1, "sag")] == {"house_id": 1, "kind": "sag", "count": 1, "total_duration_s": 180.0}
    assert summary[(2, "swell")]["count"] == 0


def test_a_long_silence_splits_an_event_and_caps_its_duration():
    ts = pd.to_datetime(["2026-03-01T00:00Z", "2026-03-01T00:15Z", "2026-03-01T06:00Z", "2026-03-01T06:15Z"])
    df = pd.DataFrame({"house_id": 1, "device": "M", "ts": ts, "voltage_v": [200.0, 200.0, 200.0, 230.0]})
    ev = voltage_events_frame(df, 230.0, max_gap_s=900)
    assert list(ev["duration_s"]) == [1800.0, 900.0]


def test_voltage_events_match_the_demo_ground_truth():
    plan = demo.plan_demo(n_houses=10, seed=5)
    start = pd.Timestamp("2026-02-01", tz="UTC")
    end = start + pd.Timedelta(days=30)
    mains = pd.concat(demo.generate_readings(plan, start, end)).query("device_key.str.endswith('-MAIN')")
    df = pd.DataFrame(
        {
            "house_id": mains["device_key"].str.split("-").str[0],
            "device": mains["device_key"],
            "ts": mains["timestamp"],
            "voltage_v": mains["voltage_v"],
        }
    )
    events = voltage_events_frame(df, 230.0)
    truth = demo.injected_anomalies(plan, start, end).query("kind in ('voltage_sag', 'voltage_swell')")
    assert len(truth) > 0
    got = {(e.house_id, "voltage_" + e.kind, e.start, e.end) for e in events.itertuples()}
    want = {(t.house_key, t.kind, t.start, t.end) for t in truth.itertuples()}
    assert got == want


# ---- power factor ----------------------------------------------------------------------------------------


def test_power_factor_days_are_local_and_dst_aware():
    # Athens: 2026-03-29 has 23 hours, 2025-10-26 has 25.
    for local_day, hours in (("2026-03-29", 23), ("2025-10-26", 25), ("2026-03-30", 24)):
        first = pd.Timestamp(local_day, tz=TZ).tz_convert("UTC")
        ts = pd.date_range(first - pd.Timedelta(hours=2), first + pd.Timedelta(hours=hours + 2), freq="15min")
        pf = np.where(ts < first + pd.Timedelta(hours=6), 0.8, 0.96)  # the day's first 6 h are poor
        df = pd.DataFrame({"house_id": 7, "device": "M", "ts": ts, "power_factor": pf})
        daily = power_factor_daily_frame(df, TZ).set_index("day")
        row = daily.loc[pd.Timestamp(local_day).date()]
        assert row["readings"] == hours * 4
        assert row["hours"] == pytest.approx(hours)
        assert row["share_below_0_9"] == pytest.approx(6 / hours)
        assert row["mean_power_factor"] == pytest.approx((6 * 0.8 + (hours - 6) * 0.96) / hours)


def test_power_factor_share_is_weighted_by_time_not_readings():
    ts = pd.to_datetime(["2026-06-01T00:00Z"] + [f"2026-06-01T01:{m:02d}Z" for m in range(0, 15, 1)])
    pf = [0.7] + [0.95] * 15  # one poor reading standing for an hour ... capped at 15 minutes
    df = pd.DataFrame({"house_id": 1, "device": "M", "ts": ts, "power_factor": pf})
    row = power_factor_daily_frame(df, TZ, max_gap_s=3600).iloc[0]
    assert row["share_below_0_9"] == pytest.approx(3600 / (3600 + 15 * 60))


# ---- load profile ----------------------------------------------------------------------------------------


def test_load_profile_in_kw_by_local_slot_with_peak_and_load_factor():
    ts = pd.date_range(pd.Timestamp("2026-06-01", tz=TZ), pd.Timestamp("2026-06-15", tz=TZ), freq="15min",
                       inclusive="left").tz_convert("UTC")  # fmt: skip
    local = ts.tz_convert(TZ)
    weekend = local.day_of_week >= 5
    energy = np.where(weekend, 0.5, 0.25)  # kWh per quarter hour: 2 kW at weekends, 1 kW on weekdays
    energy = np.where((local.hour == 19) & ~weekend, 0.75, energy)  # 3 kW at 19:00 on weekdays
    peak_i = 100
    energy[peak_i] = 1.25  # the peak quarter hour: 5 kW
    df = pd.DataFrame({"ts": ts, "energy_kwh": energy})
    prof = load_profile_frame(df, TZ)
    weekday = {p["slot"]: p["mean_kw"] for p in prof["weekday"]}
    weekend_p = {p["slot"]: p["mean_kw"] for p in prof["weekend"]}
    assert (
        len(weekday) == 96
        and weekday["19:00"] == pytest.approx(3.0)
        and weekday["12:00"] == pytest.approx(1.0)
    )
    assert weekend_p["19:00"] == pytest.approx(2.0)
    assert prof["peak_kw"] == pytest.approx(5.0) and prof["peak_at"] == ts[peak_i]
    assert prof["energy_kwh"] == pytest.approx(energy.sum())
    mean_kw = energy.sum() * 4 / len(energy)
    assert prof["mean_kw"] == pytest.approx(mean_kw, abs=1e-4)
    assert prof["load_factor"] == pytest.approx(mean_kw / 5.0, abs=1e-4)
    assert prof["days"] == {"weekday": 10, "weekend": 4}


def test_load_profile_of_nothing_is_empty_not_an_error():
    prof = load_profile_frame(pd.DataFrame(columns=["ts", "energy_kwh"]), TZ)
    assert prof["peak_kw"] is None and prof["load_factor"] is None and len(prof["weekday"]) == 96
