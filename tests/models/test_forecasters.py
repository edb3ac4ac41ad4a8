"""Forecasters: honest (no leakage), calibrated, serialisable, and better than the baselines on data
they did not train on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import ForecastConfig, Forecaster, make_forecaster
from models.backtest import backtest, forecast_origins
from models.features import make_grid

NEXT24 = ForecastConfig(model="xgboost")
SHORT8 = ForecastConfig(product="short-term", horizon=8, model="xgboost")


def hourly(series: pd.Series) -> pd.Series:
    return series.resample("1h").sum()


@pytest.mark.parametrize("kwargs", [
    {"product": "short-term", "horizon": 0}, {"product": "short-term", "horizon": 21},
    {"product": "next-24-hours", "horizon": 12}, {"model": "lstm"}, {"strategy": "sideways"},
    {"target": "gas"}, {"interval": 1.0},
])  # fmt: skip
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        ForecastConfig(**kwargs)


@pytest.mark.parametrize("lead", [1, 5, 24])
def test_features_never_look_at_or_after_the_origin(synthetic_hourly, lead):
    """Load from the origin on is never used; weather is used up to the target hour (a weather forecast
    at run time), never after it."""
    model = make_forecaster(NEXT24)
    grid = make_grid(synthetic_hourly[0], NEXT24, exog=synthetic_hourly[1])
    origin = np.array([len(grid.y) - 100])
    before, names, *_ = model.design(grid, origin, lead)
    grid = make_grid(synthetic_hourly[0], NEXT24, exog=synthetic_hourly[1])
    grid.y = grid.y.copy()
    grid.extra["temperature_c"] = grid.extra["temperature_c"].copy()
    grid.y[origin[0] :] = grid.y[origin[0] :] * 10 + 1000  # change everything from the origin on
    target = origin[0] + lead - 1
    grid.extra["temperature_c"][target + 1 :] += 30  # and the weather after the target hour
    after, *_ = model.design(grid, origin, lead)
    np.testing.assert_array_equal(before, after)
    assert "temperature_c" in names


@pytest.fixture(scope="module")
def fitted(demo_series):
    y = hourly(demo_series["consumption"])
    models = {}
    for strategy in ("direct", "recursive"):
        f = make_forecaster(ForecastConfig(model="xgboost", strategy=strategy))
        f.fit(y)
        models[strategy] = f
    return y, models


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_as_of_leaks_nothing(fitted, strategy):
    y, models = fitted
    origin = y.index[-60]
    with_future = models[strategy].predict(y, origin)
    without = models[strategy].predict(y[y.index < origin], origin)
    pd.testing.assert_frame_equal(with_future, without)
    assert with_future.index[0] == origin and len(with_future) == 24


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_band_is_ordered_and_non_negative(fitted, strategy):
    y, models = fitted
    for origin in y.index[-200::37]:
        fc = models[strategy].predict(y, origin)
        assert (fc["lower"] <= fc["point"]).all() and (fc["point"] <= fc["upper"]).all()
        assert (fc["lower"] >= 0).all()


def test_round_trip_gives_identical_predictions(fitted):
    y, models = fitted
    again = Forecaster.from_bytes(models["direct"].to_bytes())
    origin = y.index[-30]
    pd.testing.assert_frame_equal(models["direct"].predict(y, origin), again.predict(y, origin))
    assert again.report.metrics == models["direct"].report.metrics


def test_next_24_hours_beats_weekly_naive_by_20_percent_mape(fitted):
    _y, models = fitted
    m = models["direct"].report.metrics
    assert m["mape"] <= 0.8 * m["mape_weekly_naive"], m
    assert 0.8 <= m["coverage"] <= 0.97 and m["r2"] > 0.5


def test_next_24_hours_beats_weekly_naive_on_an_independent_series(synthetic_hourly):
    load, weather = synthetic_hourly
    f = make_forecaster(NEXT24)
    m = f.fit(load, exog=weather).metrics
    assert m["mape"] <= 0.8 * m["mape_weekly_naive"], m
    assert 0.8 <= m["coverage"] <= 0.97


def test_short_term_beats_persistence_and_weekly_naive_by_30_percent(demo_series):
    y = demo_series["consumption"].iloc[-90 * 96 :]
    m = make_forecaster(SHORT8).fit(y).metrics
    assert m["mape"] <= 0.7 * m["mape_persistence"], m
    assert m["mape"] <= 0.7 * m["mape_weekly_naive"], m
    assert 0.8 <= m["coverage"] <= 0.97


def test_production_forecast_follows_the_sun(demo_series):
    y = hourly(demo_series["production"]).iloc[-120 * 24 :]
    f = make_forecaster(ForecastConfig(target="production", model="xgboost"))
    m = f.fit(y).metrics
    assert m["mae"] < m["mae_weekly_naive"], m  # judged by MAE: production is zero at night
    assert np.isfinite(m["nmae"]), m
    night = f.predict(y, pd.Timestamp("2026-10-30T18:00:00Z"))  # 20:00-20:00 local
    local_hours = night.index.tz_convert("Europe/Athens").hour
    dark = (local_hours >= 21) | (local_hours <= 4)
    assert (night["point"][dark] == 0).all() and (
        night["upper"][dark] == 0
    ).all()  # no PV, not even in the band
    assert night["point"][~dark].max() > 0


def test_sarima_beats_both_baselines_short_term(demo_series):
    # how fast it trains and predicts is measured by `make bench-forecast`, not asserted here
    y = demo_series["consumption"].iloc[-90 * 96 :]
    f = make_forecaster(ForecastConfig(model="sarima", product="short-term", horizon=8))
    m = f.fit(y).metrics
    assert m["mape"] < m["mape_persistence"] and m["mape"] < m["mape_weekly_naive"], m
    fc = f.predict(y, y.index[-20])
    assert (fc["lower"] <= fc["point"]).all() and (fc["point"] <= fc["upper"]).all()


@pytest.mark.parametrize(
    ("product", "horizon", "resample"), [("next-24-hours", 24, "1h"), ("short-term", 8, None)]
)
def test_mstl_can_be_forced_beats_persistence_and_leaks_nothing(demo_series, product, horizon, resample):
    y = demo_series["consumption"].iloc[-90 * 96 :]
    y = y.resample(resample).sum() if resample else y
    f = make_forecaster(ForecastConfig(model="mstl", product=product, horizon=horizon))
    m = f.fit(y).metrics
    assert f.name == "mstl" and m["mape"] < m["mape_persistence"], m  # the demo's noise is not its forte
    origin = y.index[-30]
    served = f.predict(y[y.index < origin], origin)
    pd.testing.assert_frame_equal(served, f.predict(y, origin))  # nothing from the origin on is used
    assert (served["lower"] <= served["point"]).all() and (served["point"] <= served["upper"]).all()
    batch = forecast_origins(f, y, pd.DatetimeIndex([origin]))  # the backtest forecasts what predict serves
    np.testing.assert_allclose(batch["model"][0], served["point"].to_numpy(), rtol=1e-9)


def test_mstl_forecasts_a_public_holiday_like_a_sunday():
    """Its weekly cycle continues by kind of day, as the similar-day baseline does."""
    tz = "Australia/Melbourne"
    idx = pd.date_range("2025-10-30", "2025-12-25", freq="h", tz=tz, inclusive="left").tz_convert("UTC")
    local = idx.tz_convert(tz)
    level = np.select([local.day_of_week == 6, local.day_of_week == 5], [60.0, 80.0], 100.0)
    shape = 10 * np.sin(2 * np.pi * local.hour.to_numpy() / 24)
    y = pd.Series(level + shape + np.random.default_rng(1).normal(0, 0.5, len(idx)), index=idx)
    f = make_forecaster(ForecastConfig(model="mstl", timezone=tz, country="AU-VIC"))
    f.fit(y)
    christmas = f.predict(y, pd.Timestamp("2025-12-25", tz=tz))["point"]  # a Thursday
    assert abs(christmas.mean() - 60) < 5, christmas.mean()


def test_weather_features_are_used_when_given(demo_series):
    y = hourly(demo_series["consumption"]).iloc[-120 * 24 :]
    f = make_forecaster(NEXT24)
    f.fit(y, exog=demo_series["weather"])
    assert "temperature_c" in f.report.features


def test_backtest_reports_per_lead_errors_beside_the_baselines(synthetic_hourly):
    table = backtest(synthetic_hourly[0], NEXT24, origins=7, exog=synthetic_hourly[1])
    assert list(table.index) == list(range(1, 25))
    assert {"mae_model", "mape_model", "mape_persistence", "mape_weekly_naive"} <= set(table.columns)
    overall = table.attrs["overall"]
    assert overall["model"] < overall["weekly_naive"] and overall["model"] < overall["persistence"]


def test_too_little_data_is_a_clear_error(synthetic_hourly):
    with pytest.raises(ValueError, match="Not enough data"):
        make_forecaster(NEXT24).fit(synthetic_hourly[0].iloc[: 10 * 24])


def test_empty_history_is_a_clear_error():
    with pytest.raises(ValueError, match="Not enough data"):
        make_forecaster(NEXT24).fit(pd.Series(dtype=float))


@pytest.mark.parametrize(
    ("product", "resample", "horizon", "days"),
    [("next-24-hours", "1h", 24, 365), ("short-term", None, 8, 90)],
)
def test_backtest_on_the_demo_meets_the_bars(demo_series, product, resample, horizon, days):
    """What a `make run` user gets from `python -m dashboard backtest --origins 28` on the year of demo
    history: the last 28 days forecast from back-to-back origins by a model trained before them."""
    y = demo_series["consumption"].iloc[-days * 96 - 37 :]  # ends at an odd clock time
    y = y.resample(resample).sum() if resample else y
    cfg = ForecastConfig(product=product, horizon=horizon)
    overall = backtest(y, cfg, origins=28, exog=demo_series["weather"]).attrs["overall"]  # as the CLI does
    assert 1 - overall["model"] / overall["weekly_naive"] >= (0.2 if product == "next-24-hours" else 0.3), (
        overall
    )
    if product == "short-term":
        assert 1 - overall["model"] / overall["persistence"] >= 0.3, overall


def test_the_backtest_forecasts_exactly_what_predict_serves(fitted):
    """The backtest forecasts every origin at once on one grid; it must equal predict() from history."""
    y, models = fitted
    origins = pd.DatetimeIndex([y.index[-200], y.index[-77]])
    batch = forecast_origins(models["direct"], y, origins)
    for i, origin in enumerate(origins):
        served = models["direct"].predict(y[y.index < origin], origin)
        np.testing.assert_allclose(batch["model"][i], served["point"].to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(batch["upper"][i], served["upper"].to_numpy(), rtol=1e-9)


def test_auto_serves_the_best_candidate_and_reports_every_one(synthetic_hourly):
    load, weather = synthetic_hourly
    f = make_forecaster(ForecastConfig())
    m = f.fit(load, exog=weather).metrics
    table = m["candidates"]
    assert {"xgboost_direct", "ridge_direct", "xgboost_recursive", "sarima", "mstl", "weekly_naive",
            "persistence", "weekly_naive_adjusted", "yesterday", "mean_7d"} <= set(table)  # fmt: skip
    assert "error" not in table["mstl"] and table["mstl"]["kind"] == "model"
    assert m["chosen"] == f.name and not m["served_baseline"] and m["weather"] == "ex-post"
    best = min(c["mae"] for c in table.values() if "mae" in c)
    assert table[m["chosen"]]["mae"] == pytest.approx(best)
    assert m["mae"] <= min(table[b]["mae"] for b in ("weekly_naive", "persistence", "mean_7d", "yesterday"))
    again = Forecaster.from_bytes(f.to_bytes())
    pd.testing.assert_frame_equal(
        again.predict(load, load.index[-30], weather), f.predict(load, load.index[-30], weather)
    )


def test_auto_serves_a_baseline_that_no_model_beats_and_says_so():
    """A load that repeats every week exactly: last week's value is the truth, nothing can beat it."""
    idx = pd.date_range("2025-01-06", periods=70 * 24, freq="h", tz="UTC")
    rng = np.random.default_rng(3)
    week = rng.gamma(2.0, 50.0, 7 * 24)
    y = pd.Series(np.tile(week, 70 // 7), index=idx)
    m = make_forecaster(ForecastConfig(timezone="UTC", country="")).fit(y).metrics
    assert m["served_baseline"] and m["chosen"] == "weekly_naive", m["candidates"]
    assert "baseline is served" in m["note"] and m["mae"] == pytest.approx(0, abs=1e-9)


def test_a_model_stored_by_an_older_layout_is_refused_with_retrain(fitted):
    _y, models = fitted
    old = models["direct"]
    old.__dict__.pop("format")
    try:
        with pytest.raises(ValueError, match="train it again"):
            Forecaster.from_bytes(old.to_bytes())
    finally:
        old.format = 2
